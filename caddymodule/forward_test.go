package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// fwdFake declares a passthrough route with provider.Forward; its proxy
// records what the core hands it instead of calling an API.
type fwdFake struct{}

var fwdStats struct {
	mu           sync.Mutex
	suffix       string
	query        string
	header, cred http.Header
	tokensAtProv atomic.Bool
}

func init() { caddy.RegisterModule(fwdFake{}) }

func (fwdFake) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.pxfake", New: func() caddy.Module { return new(fwdFake) }}
}

func (p *fwdFake) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, "pxfake", nil)
}

func (p *fwdFake) ProvisionIDV(_ caddy.Context, h *provider.Host) error {
	// What the core gives a provider is complete before it provisions.
	fwdStats.tokensAtProv.Store(h.Tokens != nil && h.Record != nil && h.HTTP != nil)
	return nil
}

func (p *fwdFake) Secrets() []string { return nil }

func (p *fwdFake) Routes() []provider.Route {
	return []provider.Route{
		{Path: "/start", Kind: provider.StartSession},
		{Path: "/px/", Subtree: true, Kind: provider.Passthrough, ClientHeaders: []string{"X-Sdk-Version"}, Forward: &provider.Forward{
			Rules: []provider.PathRule{
				{Pattern: "secret", Methods: []string{http.MethodPost}, Deny: true, Reason: "posting secrets goes through /start"},
				{Pattern: "ok/**"},
				{Pattern: "secret"},
			},
			TokenHeader:  "X-Fake-Token",
			SessionParam: "sid",
			Credential:   func(tok string) http.Header { return http.Header{"X-Cred": {tok}} },
			Strip:        []string{"X-Strip-Me"},
			NoSession:    "no fake session",
			Proxy:        fwdRecorder{},
		}},
	}
}

func (p *fwdFake) Start(_ context.Context, in provider.StartInput) (provider.StartResult, error) {
	return provider.StartResult{Ref: "ref-" + in.UniqueID, Token: "tok-" + in.UniqueID[:8]}, nil
}

func (p *fwdFake) StartAnswer(_ string, s *session.Session) map[string]any {
	return map[string]any{"token": s.Token}
}

type fwdRecorder struct{}

func (fwdRecorder) Forward(w http.ResponseWriter, r *http.Request, suffix string, cred http.Header) error {
	fwdStats.mu.Lock()
	fwdStats.suffix, fwdStats.query, fwdStats.header, fwdStats.cred = suffix, r.URL.RawQuery, r.Header.Clone(), cred
	fwdStats.mu.Unlock()
	provider.WriteJSON(w, http.StatusOK, map[string]any{"forwarded": suffix})
	return nil
}

func lastForward() (string, string, http.Header, http.Header) {
	fwdStats.mu.Lock()
	defer fwdStats.mu.Unlock()
	s, q, h, c := fwdStats.suffix, fwdStats.query, fwdStats.header, fwdStats.cred
	fwdStats.suffix, fwdStats.query, fwdStats.header, fwdStats.cred = "", "", nil, nil
	return s, q, h, c
}

// TestForwardDeclaration: the core serves a declared passthrough route: it
// checks the path once against the rules, takes the token from the token
// header, the session parameter or the cookie, strips the browser's
// credentials and hands the provider's proxy the cleaned suffix.
func TestForwardDeclaration(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		pxfake
		session_quota off
		cors_origins https://app.example.com
	}
	respond "frontend"
}`)
	if !fwdStats.tokensAtProv.Load() {
		t.Fatal("Host.Tokens, Host.Record or Host.HTTP was nil during ProvisionIDV")
	}
	c := testcaddy.Client()
	_, _, a := do(t, c, "GET", in.URL("site", "/api/start"), "")
	id, tok := a["uniqueId"].(string), a["token"].(string)
	if id == "" || tok == "" {
		t.Fatalf("start: %v", a)
	}

	// The cookie's session, with X-IDV: 1; the token header and the
	// declared strip header never reach the proxy.
	st, _, m := do(t, c, "GET", in.URL("site", "/api/px/ok/a/b?x=1"), "", "X-IDV", "1", "X-Strip-Me", "v")
	suffix, q, hd, cred := lastForward()
	if st != 200 || m["forwarded"] != "ok/a/b" || suffix != "ok/a/b" || q != "x=1" || cred.Get("X-Cred") != tok || hd.Get("X-Strip-Me") != "" {
		t.Fatalf("cookie: %d %v suffix %q query %q cred %v header %v", st, m, suffix, q, cred, hd)
	}
	// The token header wins over the cookie, and is not forwarded.
	do(t, c, "GET", in.URL("site", "/api/px/ok/c"), "", "X-IDV", "1", "X-Fake-Token", "own-token")
	if _, _, hd, cred := lastForward(); cred.Get("X-Cred") != "own-token" || hd.Get("X-Fake-Token") != "" {
		t.Fatalf("token header: cred %v header %v", cred, hd)
	}
	// The session parameter names the session from another browser, and
	// is removed from the query.
	st, _, _ = do(t, testcaddy.Client(), "GET", in.URL("site", "/api/px/ok/d?a=1&sid="+id+"&b=2"), "")
	if _, q, _, cred := lastForward(); st != 200 || q != "a=1&b=2" || cred.Get("X-Cred") != tok {
		t.Fatalf("session param: %d query %q cred %v", st, q, cred)
	}

	// Rules, in order, fail closed; matching ignores case.
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"POST", "/api/px/secret", 403, "posting secrets goes through /start"},
		{"POST", "/api/px/SeCrEt", 403, "posting secrets goes through /start"},
		{"GET", "/api/px/other", 403, "this path is not forwarded to the provider"},
		{"GET", "/api/px/ok/..%2f..%2fx", 400, "path is not allowed"},
		{"GET", "/api/px/ok/g?a=1;sid=x", 400, "malformed query"},
		{"GET", "/api/px/ok/g?_method=POST", 400, "method overrides are refused"},
	} {
		st, _, m := do(t, c, tc.method, in.URL("site", tc.path), "", "X-IDV", "1")
		if s, _, _, _ := lastForward(); st != tc.status || !strings.Contains(m["error"].(string), tc.msg) || s != "" {
			t.Errorf("%s %s: %d %v (forwarded %q)", tc.method, tc.path, st, m, s)
		}
	}
	st, _, _ = do(t, c, "GET", in.URL("site", "/api/px/secret"), "", "X-IDV", "1")
	if s, _, _, _ := lastForward(); st != 200 || s != "secret" {
		t.Fatalf("GET secret: %d %q", st, s)
	}
	// No session: the declared 401.
	st, _, m = do(t, testcaddy.Client(), "GET", in.URL("site", "/api/px/ok/e"), "", "X-IDV", "1")
	if st != 401 || m["error"] != "no fake session" {
		t.Fatalf("no session: %d %v", st, m)
	}

	// A listed origin's preflight allows the route's own headers, and only
	// on that route.
	_, h, _ := do(t, c, "OPTIONS", in.URL("site", "/api/px/ok/f"), "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	if ah := h.Get("Access-Control-Allow-Headers"); !strings.Contains(ah, "X-Fake-Token") || !strings.Contains(ah, "X-Sdk-Version") || !strings.Contains(ah, "X-IDV") {
		t.Fatalf("passthrough preflight: %q", ah)
	}
	_, h, _ = do(t, c, "OPTIONS", in.URL("site", "/api/start"), "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	if ah := h.Get("Access-Control-Allow-Headers"); strings.Contains(ah, "X-Fake-Token") || !strings.Contains(ah, "X-IDV") {
		t.Fatalf("start preflight: %q", ah)
	}
}
