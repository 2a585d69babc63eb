package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestReloadUnderLoadDropsNothing reloads the configuration five times
// while clients resume sessions, use the passthrough and load the frontend,
// and checks that every request got its 200 and that the token cache and
// the stored sessions were kept.
//
// On Linux, Caddy hands its listening sockets over with SO_REUSEPORT, and the
// kernel resets connections caught in the old socket's accept queue; that
// hits every handler alike (a plain respond too), so a transport error is
// retried once, as browsers do for idempotent requests, and counted. The
// sandbox standing in for the provider runs in the same Caddy and is
// reloaded too (a real provider is not), so a provider call caught in its
// handover (502 "upstream unreachable") is retried once the same way. Any
// other answer than 200 fails the test.
func TestReloadUnderLoadDropsNothing(t *testing.T) {
	in := testcaddy.Start(t, cfg(""))
	ob := startSession(t, in, testcaddy.Client())
	iid, uid, tok := ob["interviewId"].(string), ob["uniqueId"].(string), ob["token"].(string)
	do(t, testcaddy.Client(), "GET", in.URL("site", "/api/onboarding-status?interviewId="+iid), "")

	targets := []struct {
		path string
		hdr  []string
	}{
		{"/api/start?uniqueId=" + uid, nil},
		{"/api/0/omni/get/score", []string{"X-Incode-Hardware-Id", tok}},
		{"/api/onboarding-status?interviewId=" + iid, nil},
		{"/", nil},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var total, failed, retried atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tg := targets[(w+i)%len(targets)]
				req, _ := http.NewRequest("GET", in.URL("site", tg.path), nil)
				for j := 0; j+1 < len(tg.hdr); j += 2 {
					req.Header.Set(tg.hdr[j], tg.hdr[j+1])
				}
				total.Add(1)
				resp, err := c.Do(req)
				// A reset caught in the old socket's accept queue can meet
				// the next attempt in the queue of the config after it
				// (five reloads in 500 ms): a browser retries, so do we, a
				// few times, with a pause.
				for try := 0; try < 3 && (err != nil || handover(resp)); try++ {
					if resp != nil {
						resp.Body.Close()
					}
					retried.Add(1)
					time.Sleep(20 * time.Millisecond)
					resp, err = c.Do(req)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d", tg.path, resp.StatusCode))
				}
			}
		}()
	}
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond) // let load run between reloads
		if err := in.Reload(cfg(fmt.Sprintf("timeout %ds", 10+i))); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if total.Load() < 50 {
		t.Fatalf("only %d requests ran: the test proved nothing", total.Load())
	}
	t.Logf("%d requests, %d retried after a listener handover (connection reset, or the in-process sandbox unreachable)", total.Load(), retried.Load())
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across reloads; first: %v", failed.Load(), total.Load(), firstErr.Load())
	}
	calls := testcaddy.Calls(t, in.URL("sandbox", ""))
	if n := testcaddy.CountCalls(calls, "executive/log-in"); n != 1 {
		t.Fatalf("%d executive logins across 5 reloads, want 1", n)
	}
	if n := testcaddy.CountCalls(calls, "omni/start"); n != 1 {
		t.Fatalf("%d sessions started, want 1", n)
	}
}

// handover reports (and consumes) a 502 "upstream unreachable": the
// in-process sandbox was between its old and new listener.
func handover(resp *http.Response) bool {
	if resp == nil || resp.StatusCode != http.StatusBadGateway {
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return strings.Contains(string(b), "upstream unreachable")
}

// TestGracefulStopFinishesInFlightCalls stops Caddy while a provider call
// is in flight; the caller still gets its answer.
func TestGracefulStopFinishesInFlightCalls(t *testing.T) {
	in := testcaddy.Start(t, cfg(""))
	sb := in.URL("sandbox", "")
	testcaddy.Fault(t, sb, map[string]any{"provider": "incode", "op": "omni/start", "latency": "400ms", "times": 1})
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(in.URL("site", "/api/start"))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	// Wait until the sandbox has the call, then stop everything.
	deadline := time.Now().Add(10 * time.Second)
	for testcaddy.CountCalls(testcaddy.Calls(t, sb), "omni/start") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the sandbox")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight /start during a graceful stop: %d %v", r.status, r.err)
	}
}
