package upstream

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
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
	if ce := ClientError(err); ce.Status != 502 || ce.Msg != "upstream unreachable" {
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
