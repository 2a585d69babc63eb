package incode_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// benchSandbox provisions an idv_sandbox with an Incode emulator, served
// in-process (no network), as the benchmark's sandbox runs it.
func benchSandbox(b *testing.B) *sandbox.Handler {
	b.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	h := &sandbox.Handler{Name: "bench-" + b.Name(), EmulatorsRaw: caddy.ModuleMap{
		"incode": json.RawMessage(`{"api_key":"k","flow_id":"f","client_id":"c"}`)}}
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Cleanup() })
	return h
}

func benchServe(b *testing.B, h *sandbox.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil || w.Code != http.StatusOK {
		b.Fatalf("%s %s: %v %d %s", r.Method, r.URL, err, w.Code, w.Body)
	}
	return w
}

func benchStart(b *testing.B, h *sandbox.Handler) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/omni/start", strings.NewReader(`{"configurationId":"f","language":"en-US"}`))
	r.Header.Set("X-Api-Key", "k")
	r.Header.Set("Content-Type", "application/json")
	return benchServe(b, h, r)
}

// BenchmarkSandboxOnboardingURL is the idv handler's /api/onboarding-url
// as the sandbox sees it: POST /omni/start, then GET /0/omni/onboarding-url
// with the new session token.
func BenchmarkSandboxOnboardingURL(b *testing.B) {
	h := benchSandbox(b)
	b.ReportAllocs()
	for b.Loop() {
		var out struct{ Token string }
		if err := json.Unmarshal(benchStart(b, h).Body.Bytes(), &out); err != nil || out.Token == "" {
			b.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/0/omni/onboarding-url", nil)
		r.Header.Set("X-Incode-Hardware-Id", out.Token)
		benchServe(b, h, r)
	}
}

// BenchmarkSandboxOnboardingURLSameToken is GET /0/omni/onboarding-url
// alone, with one session token again and again.
func BenchmarkSandboxOnboardingURLSameToken(b *testing.B) {
	h := benchSandbox(b)
	var out struct{ Token string }
	if err := json.Unmarshal(benchStart(b, h).Body.Bytes(), &out); err != nil || out.Token == "" {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/0/omni/onboarding-url", nil)
	r.Header.Set("X-Incode-Hardware-Id", out.Token)
	b.ReportAllocs()
	for b.Loop() {
		benchServe(b, h, r)
	}
}
