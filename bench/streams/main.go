// Command streams holds many /api/session/events streams open on one idv
// process, one per stored session (written by bench/sessions), measures the
// process's RSS per stream, then sends webhooks for some of the sessions
// and measures how long each takes to reach its stream. It prints one JSON
// line for bench/run.sh. With -proto h2 every stream is an HTTP/2 stream on
// its own TLS connection, as a browser's EventSource over HTTPS is (the
// handler cannot take those over, so they cost more); -proto h2c is the
// same without TLS (prior knowledge). The certificate is not verified: the
// site under test uses Caddy's internal CA.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		base   = flag.String("url", "", "the idv site, e.g. http://127.0.0.1:8080")
		idsF   = flag.String("ids", "", "uniqueIds, one per line")
		refsF  = flag.String("refs", "", "\"uniqueId interviewId\" lines (bench/sessions -refs)")
		n      = flag.Int("n", 10000, "streams")
		pid    = flag.Int("pid", 0, "the idv process")
		hooks  = flag.Int("hooks", 200, "webhooks to send")
		header = flag.String("header", "X-Webhook-Secret: bench-webhook-secret", "webhook credential header")
		side   = flag.String("side", "idv", "what serves the streams, for the report: idv, or reverse_proxy (stock Caddy proxying them to a token server)")
		idle   = flag.Bool("idle", false, "instead of streams, hold -n idle connections that each made one GET -url (what the protocol costs the server before any stream)")
		hold   = flag.Duration("hold", 0, "keep the streams open this long after the webhooks (to profile the process)")
		proto  = flag.String("proto", "h1", "h1 (HTTP/1.1), h2 (HTTP/2 over TLS) or h2c (HTTP/2 without TLS) for the streams; webhooks use HTTP/1.1")
	)
	flag.Parse()
	// transport is one browser's: a transport per stream, so no two streams
	// share a connection.
	transport := func() *http.Transport {
		t := &http.Transport{TLSClientConfig: insecure()}
		switch *proto {
		case "h1":
		case "h2", "h2c":
			var p http.Protocols
			p.SetHTTP2(*proto == "h2")
			p.SetUnencryptedHTTP2(*proto == "h2c")
			t.Protocols = &p
		default:
			fail(fmt.Errorf("-proto %q: h1, h2 or h2c", *proto))
		}
		return t
	}
	if *idle {
		idleConns(*base, *n, *pid, *proto, *hold, transport)
		return
	}
	b, err := os.ReadFile(*idsF)
	if err != nil {
		fail(err)
	}
	ids := strings.Fields(string(b))
	if len(ids) < *n {
		fail(fmt.Errorf("%d ids for %d streams", len(ids), *n))
	}
	ids = ids[:*n]
	rb, err := os.ReadFile(*refsF)
	if err != nil {
		fail(err)
	}
	refOf := map[string]string{}
	for _, l := range strings.Split(string(rb), "\n") {
		if id, ref, ok := strings.Cut(l, " "); ok {
			refOf[id] = ref
		}
	}
	refs := make([]string, len(ids))
	for i, id := range ids {
		if refs[i] = refOf[id]; refs[i] == "" {
			fail(fmt.Errorf("session %s: no interviewId in %s", id, *refsF))
		}
	}
	// Webhooks: HTTP/1.1 (over TLS for an https site), as providers send them.
	var h1 http.Protocols
	h1.SetHTTP1(true)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, TLSClientConfig: insecure(), Protocols: &h1}
	client := &http.Client{Transport: tr}
	rssBefore := rss(*pid)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make([]chan time.Time, len(ids))
	var openFailed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	start := time.Now()
	for i := range ids {
		events[i] = make(chan time.Time, 4)
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			req, _ := http.NewRequestWithContext(ctx, "GET", *base+"/api/session/events", nil)
			req.Header.Set("Cookie", "idv_session="+ids[i])
			req.Header.Set("X-IDV", "1")
			resp, err := (&http.Client{Transport: transport()}).Do(req)
			if err = refused(resp, err, *proto); err != nil {
				if resp != nil {
					resp.Body.Close() // a refused stream must not stay open and count in the RSS
				}
				openFailed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				<-sem
				wg.Done()
				return
			}
			sc := bufio.NewScanner(resp.Body)
			first := true
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					if first {
						first = false
						<-sem
						wg.Done()
						continue
					}
					select {
					case events[i] <- time.Now():
					default:
					}
				}
			}
			if first {
				openFailed.Add(1)
				<-sem
				wg.Done()
			}
		}(i)
	}
	wg.Wait()
	openS := time.Since(start).Seconds()
	time.Sleep(2 * time.Second) // let the process settle
	rssAfter := rss(*pid)

	// Webhooks, one at a time, spread over the streams.
	hdr := strings.SplitN(*header, ":", 2)
	var lat, latAnswered []float64
	lost := 0
	step := max(len(ids) / *hooks, 1)
	for k := 0; k < *hooks && k*step < len(ids); k++ {
		i := k * step
		body := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ID_VALIDATION_FINISHED"}`, refs[i])
		req, _ := http.NewRequest("POST", *base+"/api/webhook", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(strings.TrimSpace(hdr[0]), strings.TrimSpace(hdr[1]))
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			fail(err)
		}
		resp.Body.Close()
		answered := time.Since(t0)
		if resp.StatusCode != 200 {
			fail(fmt.Errorf("webhook: status %d", resp.StatusCode))
		}
		select {
		case at := <-events[i]:
			lat = append(lat, float64(at.Sub(t0).Microseconds())/1000)
			latAnswered = append(latAnswered, float64(answered.Microseconds())/1000)
		case <-time.After(10 * time.Second):
			lost++
		}
	}
	sort.Float64s(lat)
	sort.Float64s(latAnswered)
	opened := len(ids) - int(openFailed.Load())
	per := 0.0
	if opened > 0 {
		per = float64(rssAfter-rssBefore) / float64(opened)
	}
	fe, _ := firstErr.Load().(string)
	out, _ := json.Marshal(map[string]any{"kind": "streams", "proto": *proto, "side": *side, "n": len(ids), "opened": opened, "open_s": openS,
		"rss_before_kb": rssBefore, "rss_after_kb": rssAfter, "per_stream_kb": per,
		"hooks": len(lat), "lost": lost, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": pct(lat, 100),
		"webhook_p50_ms": pct(latAnswered, 50), "first_error": fe})
	fmt.Println(string(out))
	time.Sleep(*hold)
}

// refused says why an answer does not count: an error, a status other than
// 200, or HTTP/1 where HTTP/2 was asked for.
func refused(resp *http.Response, err error, proto string) error {
	switch {
	case err != nil:
		return err
	case resp.StatusCode != 200:
		return fmt.Errorf("status %d", resp.StatusCode)
	case proto != "h1" && resp.ProtoMajor != 2:
		return fmt.Errorf("served over %s, not HTTP/2", resp.Proto)
	}
	return nil
}

// insecure is a new config for each transport (a transport adds its ALPN
// protocols to the one it is given): the site under test uses Caddy's
// internal CA.
func insecure() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec

// idleConns opens n connections that each make one GET of url and then
// stay open and idle, and prints the process's RSS per connection.
func idleConns(url string, n, pid int, proto string, hold time.Duration, transport func() *http.Transport) {
	rssBefore := rss(pid)
	held := make([]*http.Transport, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range held {
		held[i] = transport()
		wg.Add(1)
		sem <- struct{}{}
		go func(t *http.Transport) {
			defer func() { <-sem; wg.Done() }()
			resp, err := (&http.Client{Transport: t}).Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err = refused(resp, err, proto); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}(held[i])
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // let the process settle
	rssAfter := rss(pid)
	opened := n - int(failed.Load())
	per := 0.0
	if opened > 0 {
		per = float64(rssAfter-rssBefore) / float64(opened)
	}
	fe, _ := firstErr.Load().(string)
	out, _ := json.Marshal(map[string]any{"kind": "idle_conns", "proto": proto, "n": n, "opened": opened,
		"rss_before_kb": rssBefore, "rss_after_kb": rssAfter, "per_stream_kb": per, "first_error": fe})
	fmt.Println(string(out))
	time.Sleep(hold)
	for _, t := range held {
		t.CloseIdleConnections()
	}
}

func pct(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	i := (len(v)*p + 99) / 100
	return v[min(max(i-1, 0), len(v)-1)]
}

func rss(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fail(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb int
			fmt.Sscan(f[1], &kb)
			return kb
		}
	}
	return 0
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "streams:", err)
	os.Exit(1)
}
