package regula_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// The API key is long and distinctive so the sandbox's request log can spot
// it in any header.
const apiKey = "regula-test-api-key-5f1c9e"

// stackOpts varies the test Caddyfile.
type stackOpts struct {
	TTL     string // the provider's ttl; default 1h
	Timeout string // the handler's timeout; default 10s
	Scheme  string // api_key_scheme on both sides; default ""
	Webhook bool   // the sandbox sends webhooks to the site
}

// stack is a site running the regula provider against a sandbox.
type stack struct {
	t  *testing.T
	in *testcaddy.Instance
}

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	t.Setenv("REGULA_TEST_API_KEY", apiKey)
	if o.TTL == "" {
		o.TTL = "1h"
	}
	if o.Timeout == "" {
		o.Timeout = "10s"
	}
	scheme := `""`
	if o.Scheme != "" {
		scheme = o.Scheme
	}
	hook := ""
	if o.Webhook {
		hook = `
			webhook_url http://127.0.0.1:@@site@@/api/webhook
			webhook_auth header X-Webhook-Secret s
			webhook_retry 50ms 2 5`
	}
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		regula {
			host           http://127.0.0.1:@@sandbox@@
			api_key        {env.REGULA_TEST_API_KEY}
			api_key_scheme `+scheme+`
			workflow_id    wf-test
			ttl            `+o.TTL+`
		}
		webhook_auth header X-Webhook-Secret s
		session_quota off
		timeout `+o.Timeout+`
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		regula {
			api_key        {env.REGULA_TEST_API_KEY}
			api_key_scheme `+scheme+`
			workflow_id    wf-test
			max_ttl        2h`+hook+`
		}
	}
}`)
	return &stack{t: t, in: in}
}

func (s *stack) site(path string) string    { return s.in.URL("site", path) }
func (s *stack) sandbox(path string) string { return s.in.URL("sandbox", path) }

// started is the answer of /start.
type started struct {
	SessionID string `json:"sessionId"`
	UniqueID  string `json:"uniqueId"`
	URL       string `json:"url"`
	ExpiresAt string `json:"expiresAt"`
}

// start calls a start route and fails the test unless it answers 200.
func (s *stack) start(c *http.Client, method, path, body string, hdr ...string) started {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	status, _, out := testcaddy.Do(s.t, c, method, s.site(path), rd, hdr...)
	if status != http.StatusOK {
		s.t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
	var st started
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("%s %s: %v: %s", method, path, err, out)
	}
	if st.SessionID == "" || st.UniqueID == "" || st.URL == "" || st.ExpiresAt == "" {
		s.t.Fatalf("%s %s: a field is missing: %s", method, path, out)
	}
	return st
}

// handoff is a decoded handoff URL.
type handoff struct {
	Outer, Inner *url.URL
	Token        string // the authorization parameter of the mobile link
	SessionID    string
}

func decodeHandoff(t *testing.T, raw string) handoff {
	t.Helper()
	outer, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("handoff URL %q: %v", raw, err)
	}
	inner, err := url.Parse(outer.Query().Get("url"))
	if err != nil {
		t.Fatalf("mobile link in %q: %v", raw, err)
	}
	return handoff{Outer: outer, Inner: inner, Token: inner.Query().Get("authorization"), SessionID: inner.Query().Get("sessionId")}
}

// get decodes a JSON answer of the sandbox's debug endpoints.
func (s *stack) get(path string, v any) {
	s.t.Helper()
	status, _, body := testcaddy.Do(s.t, http.DefaultClient, "GET", s.sandbox(path), nil)
	if status != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
}

// calls returns the sandbox's call counters of the regula emulator.
func (s *stack) calls() map[string]int {
	var out struct {
		Calls map[string]int `json:"calls"`
	}
	s.get("/__sandbox/calls", &out)
	return out.Calls
}

func (s *stack) requests() []sandbox.Request {
	var out struct {
		Requests []sandbox.Request `json:"requests"`
	}
	s.get("/__sandbox/requests", &out)
	return out.Requests
}

func (s *stack) reset() {
	s.t.Helper()
	if status, _, body := testcaddy.Do(s.t, http.DefaultClient, "POST", s.sandbox("/__sandbox/reset"), nil); status != http.StatusOK {
		s.t.Fatalf("reset: %d %s", status, body)
	}
}

func (s *stack) fault(f sandbox.Fault) {
	s.t.Helper()
	b, _ := json.Marshal(f)
	if status, _, body := testcaddy.Do(s.t, http.DefaultClient, "POST", s.sandbox("/__sandbox/faults"), strings.NewReader(string(b))); status != http.StatusOK {
		s.t.Fatalf("fault: %d %s", status, body)
	}
}

// view is the part of GET /api/session the tests read.
type view struct {
	Status string `json:"status"`
	Result string `json:"result"`
	Events []struct {
		Status string `json:"status"`
	} `json:"events"`
}

func (s *stack) session(c *http.Client) view {
	s.t.Helper()
	status, _, body := testcaddy.Do(s.t, c, "GET", s.site("/api/session"), nil)
	if status != http.StatusOK {
		s.t.Fatalf("GET /api/session: %d %s", status, body)
	}
	var v view
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

// eventually polls cond until it holds, failing after a generous deadline
// (the deadline only bounds a broken test; nothing is timed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rawRequest sends a request whose path is put on the wire exactly as
// given, with no client-side cleaning or re-encoding.
func rawRequest(t *testing.T, c *http.Client, method, base, rawPath string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
