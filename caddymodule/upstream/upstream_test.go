package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func client(t *testing.T, h http.HandlerFunc) (*Client, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &Client{Base: u, HTTP: srv.Client(), Timeout: 2 * time.Second, Retries: 1, MaxRetryAfter: time.Second}, &n
}

func TestNonIdempotentCallsAreNeverRetried(t *testing.T) {
	c, n := client(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	_, err := c.Do(context.Background(), Request{Method: "POST", Path: "/omni/start", Body: map[string]string{}}, nil)
	if Status(err) != 503 || n.Load() != 1 {
		t.Fatalf("POST: err %v after %d calls, want one call", err, n.Load())
	}
	n.Store(0)
	_, err = c.Do(context.Background(), Request{Method: "GET", Path: "/x", Idempotent: true}, nil)
	if Status(err) != 503 || n.Load() != 2 {
		t.Fatalf("GET: err %v after %d calls, want two", err, n.Load())
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var first atomic.Int64
	c, n := client(t, func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(0, time.Now().UnixNano()) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		if waited := time.Duration(time.Now().UnixNano() - first.Load()); waited < 900*time.Millisecond {
			w.WriteHeader(500) // retried before Retry-After: fail the test through the status
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	var out struct{ OK bool }
	if _, err := c.Do(context.Background(), Request{Method: "GET", Path: "/x", Idempotent: true}, &out); err != nil || !out.OK {
		t.Fatalf("err %v out %+v after %d calls", err, out, n.Load())
	}
	// A Retry-After longer than MaxRetryAfter is passed on as a 429.
	c2, _ := client(t, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Retry-After", "30"); w.WriteHeader(429) })
	_, err := c2.Do(context.Background(), Request{Method: "GET", Path: "/x", Idempotent: true}, nil)
	ce := ClientError(err)
	if ce.Status != 429 || ce.RetryAfter != 30*time.Second {
		t.Fatalf("ClientError %+v", ce)
	}
}

func TestClientErrorMapping(t *testing.T) {
	slow, _ := client(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(500 * time.Millisecond) })
	slow.Timeout = 100 * time.Millisecond
	_, err := slow.Do(context.Background(), Request{Method: "GET", Path: "/x"}, nil)
	if ce := ClientError(err); ce.Status != 504 {
		t.Fatalf("timeout mapped to %d", ce.Status)
	}
	bad, _ := client(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"token":`)) })
	var out map[string]any
	_, err = bad.Do(context.Background(), Request{Method: "GET", Path: "/x"}, &out)
	if !errors.Is(err, ErrMalformed) || ClientError(err).Status != 502 {
		t.Fatalf("malformed JSON: %v", err)
	}
	down := &Client{Base: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, HTTP: http.DefaultClient, Timeout: time.Second}
	_, err = down.Do(context.Background(), Request{Method: "GET", Path: "/x"}, nil)
	if ce := ClientError(err); ce.Status != 502 || ce.Msg != "upstream unreachable: connection refused" {
		t.Fatalf("connection refused: %+v", ce)
	}
	status, _ := client(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) })
	_, err = status.Do(context.Background(), Request{Method: "GET", Path: "/x"}, nil)
	if ce := ClientError(err); ce.Status != 502 || ce.Msg != "upstream answered 403" {
		t.Fatalf("403: %+v", ce)
	}
}

func TestRequestsStayOnBase(t *testing.T) {
	var path, host string
	c, _ := client(t, func(w http.ResponseWriter, r *http.Request) {
		path, host = r.URL.RawPath+"|"+r.URL.Path, r.Host
		_, _ = w.Write([]byte(`{}`))
	})
	_, _ = c.Do(context.Background(), Request{Method: "GET", Path: "/omni/get/score", Query: url.Values{"id": {"../x?y#z"}}}, nil)
	if path != "|/omni/get/score" || host != c.Base.Host {
		t.Fatalf("sent to %s %s", host, path)
	}
}

// TestCauseNamesWhyTheProviderIsUnreachable: a closed port, a name that does
// not resolve, a certificate that is not trusted and a plain-HTTP server
// answering an https:// api_url each get their own words, in the log line
// (with the host and the operation) and in the answer.
func TestCauseNamesWhyTheProviderIsUnreachable(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)
	for _, tc := range []struct{ base, want string }{
		{"http://127.0.0.1:1", "connection refused"},
		{"http://no-such-host.invalid", "DNS lookup failed"},
		{tlsSrv.URL, "TLS certificate not trusted"},
		{strings.Replace(plain.URL, "http:", "https:", 1), "TLS handshake failed"},
	} {
		u, _ := url.Parse(tc.base)
		core, logs := observer.New(zap.InfoLevel)
		c := &Client{Base: u, HTTP: &http.Client{}, Timeout: 5 * time.Second, Logger: zap.New(core), Provider: "incode"}
		_, err := c.Do(context.Background(), Request{Op: "omni/start", Method: "POST", Path: "/omni/start?secret=x"}, nil)
		ce := ClientError(err)
		if ce.Status != 502 || !strings.HasPrefix(ce.Msg, "upstream unreachable: "+tc.want) {
			t.Errorf("%s: answered %d %q, want the cause %q", tc.base, ce.Status, ce.Msg, tc.want)
		}
		entries := logs.FilterMessage("provider call failed").All()
		if len(entries) != 1 {
			t.Fatalf("%s: %d log lines", tc.base, len(entries))
		}
		f := entries[0].ContextMap()
		if f["host"] != u.Host || f["op"] != "omni/start" || !strings.HasPrefix(f["error"].(string), tc.want) {
			t.Errorf("%s: logged %v", tc.base, f)
		}
		if strings.Contains(fmt.Sprint(f), "secret") || strings.Contains(ce.Msg, "secret") {
			t.Errorf("%s: the query string leaked: %v / %q", tc.base, f, ce.Msg)
		}
	}
}
