package caddymodule_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// kitFake is a kit provider with no API: Start mints ids, RefreshToken
// counts its calls, webhooks are JSON signed with X-Sig = hex HMAC-SHA256.
type kitFake struct {
	Secret string `json:"secret,omitempty"`
	// Fail makes Start fail after the provider session exists.
	Fail  bool `json:"fail,omitempty"`
	Token bool `json:"token,omitempty"` // Start returns a token
}

var kitStats struct {
	starts, refreshes atomic.Int64
	mu                sync.Mutex
	last              provider.StartInput
}

func init() { caddy.RegisterModule(kitFake{}) }

func (kitFake) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.kitfake", New: func() caddy.Module { return new(kitFake) }}
}

func (p *kitFake) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, "kitfake", map[string]provider.Option{
		"secret": provider.String(&p.Secret),
		"fail":   {Set: func(a []string) error { p.Fail = a[0] == "on"; return nil }},
		"token":  {Set: func(a []string) error { p.Token = a[0] == "on"; return nil }},
	})
}

func (p *kitFake) ProvisionIDV(caddy.Context, *provider.Host) error { return nil }
func (p *kitFake) Secrets() []string                                { return []string{p.Secret} }
func (p *kitFake) Routes() []provider.Route {
	return []provider.Route{
		{Path: "/start", Kind: provider.StartSession},
		{Path: "/token", Kind: provider.SessionToken},
		{Path: "/webhook", Kind: provider.SignedWebhook},
	}
}

func (p *kitFake) Start(_ context.Context, in provider.StartInput) (provider.StartResult, error) {
	kitStats.starts.Add(1)
	kitStats.mu.Lock()
	kitStats.last = in
	kitStats.mu.Unlock()
	res := provider.StartResult{Ref: "ref-" + in.UniqueID[:8], URL: "https://flow.example/" + in.UniqueID[:8]}
	if p.Token {
		res.Token, res.TokenExpiresAt = "tok-start", time.Now().Add(time.Hour)
	}
	if p.Fail {
		return res, errors.New("second step failed")
	}
	return res, nil
}

func (p *kitFake) StartAnswer(route string, s *session.Session) map[string]any {
	return map[string]any{"sessionId": s.Ref, "url": s.URL}
}

func (p *kitFake) RefreshToken(context.Context, *session.Session) (string, time.Time, error) {
	n := kitStats.refreshes.Add(1)
	time.Sleep(50 * time.Millisecond) // concurrent callers overlap this call
	return fmt.Sprintf("tok-%d", n), time.Now().Add(time.Hour), nil
}

func (p *kitFake) VerifyWebhook(h http.Header, body []byte) error {
	if p.Secret == "" {
		return provider.ErrNoWebhookSecret
	}
	got, err := hex.DecodeString(h.Get("X-Sig"))
	m := hmac.New(sha256.New, []byte(p.Secret))
	m.Write(body)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return errors.New("signature mismatch")
	}
	return nil
}

type fakeEvent struct {
	Ref      string    `json:"ref"`
	Key      string    `json:"key"`
	Status   string    `json:"status"`
	Result   string    `json:"result"`
	At       time.Time `json:"at"`
	Decision bool      `json:"decision"`
}

func (p *kitFake) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	var e fakeEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, provider.Errorf(http.StatusBadRequest, "malformed JSON body")
	}
	return []provider.KitEvent{{Event: provider.Event{Ref: e.Ref, Key: e.Key, Status: e.Status, Result: e.Result}, At: e.At, Decision: e.Decision}}, nil
}

var (
	_ provider.Provider        = (*kitFake)(nil)
	_ provider.Starter         = (*kitFake)(nil)
	_ provider.TokenRefresher  = (*kitFake)(nil)
	_ provider.WebhookVerifier = (*kitFake)(nil)
	_ provider.WebhookParser   = (*kitFake)(nil)
)

func kitCfg(opts, extra string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@site@@ {
	idv {
		kitfake {
			%s
		}
		%s
	}
	respond "frontend"
}`, opts, extra)
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestKitStart(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s", "session_quota 3 10m\nredirect_origins https://app.example"))
	c := testcaddy.Client()
	start := kitStats.starts.Load()
	st, _, a := do(t, c, "GET", in.URL("site", "/api/start?externalUserId=u1&language=pt-BR"), "")
	if st != 200 || a["uniqueId"] == "" || a["sessionId"] == nil || a["url"] == nil {
		t.Fatalf("start: %d %v", st, a)
	}
	kitStats.mu.Lock()
	last := kitStats.last
	kitStats.mu.Unlock()
	if last.ExternalUserID != "u1" || last.Language != "pt-BR" || last.UniqueID != a["uniqueId"] || last.Route != "/start" ||
		!strings.HasPrefix(last.Origin, "http://127.0.0.1:") {
		t.Fatalf("StartInput: %+v", last)
	}
	// The cookie's session is resumed: no second provider session.
	_, _, b := do(t, c, "GET", in.URL("site", "/api/start"), "")
	if b["uniqueId"] != a["uniqueId"] || kitStats.starts.Load() != start+1 {
		t.Fatalf("resume by cookie: %v, %d starts", b, kitStats.starts.Load()-start)
	}
	// A POST body wins over the query; ?new=1 starts another.
	_, _, n := do(t, c, "POST", in.URL("site", "/api/start?new=1&firstName=q"), `{"firstName":"Ann","redirectionUrl":"https://app.example/done"}`)
	kitStats.mu.Lock()
	last = kitStats.last
	kitStats.mu.Unlock()
	if n["uniqueId"] == a["uniqueId"] || last.FirstName != "Ann" || last.RedirectURL != "https://app.example/done" {
		t.Fatalf("new=1: %v %+v", n, last)
	}
	// By uniqueId, from another browser.
	_, _, r := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start?uniqueId="+a["uniqueId"].(string)), "")
	if r["uniqueId"] != a["uniqueId"] || r["sessionId"] != a["sessionId"] {
		t.Fatalf("resume by uniqueId: %v", r)
	}
	// Cross-site starts are refused before the provider is called.
	before := kitStats.starts.Load()
	st, _, x := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "", "Origin", "https://evil.example")
	if st != 403 || kitStats.starts.Load() != before {
		t.Fatalf("cross-site: %d %v", st, x)
	}
	// The quota (3) counts creations only.
	do(t, c, "GET", in.URL("site", "/api/start?new=1"), "")
	st, _, q := do(t, c, "GET", in.URL("site", "/api/start?new=1"), "")
	if st != 429 || kitStats.starts.Load() != before+1 {
		t.Fatalf("quota: %d %v, %d starts", st, q, kitStats.starts.Load()-before)
	}
}

func TestKitStartErrors(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s", "session_quota off"))
	testcaddy.CheckErrors(t, in.URL("site", ""), 10, []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/start?uniqueId=", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("POST", "/api/start", `{"uniqueId":5}`, nil, 400, `field "uniqueId" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"firstName":["a"]}`, nil, 400, `field "firstName" must be a string`),
		testcaddy.Case("POST", "/api/start", `[1]`, nil, 400, "the body must be a JSON object"),
		testcaddy.Case("GET", "/api/start?externalUserId="+strings.Repeat("x", 257), "", nil, 400, "externalUserId is longer than 256 characters"),
		testcaddy.Case("GET", "/api/start?lastName=a%0Ab", "", nil, 400, "lastName must not contain control characters"),
		testcaddy.Case("GET", "/api/start?language=en_US", "", nil, 400, "language must be a language tag"),
		testcaddy.Case("GET", "/api/start?redirectionUrl=https://evil.example/", "", nil, 400, "redirectionUrl origin https://evil.example is not allowed"),
		testcaddy.Case("POST", "/api/start", `{"lastName":"`+strings.Repeat("z", 1<<20)+`"}`, nil, 413, "request body is larger than 1048576 bytes"),
		testcaddy.Case("PUT", "/api/start", "", nil, 405, "method PUT is not allowed on /api/start"),
		testcaddy.Case("GET", "/api/token", "", nil, 401, "no session"),
		testcaddy.Case("GET", "/api/webhook", "", nil, 405, "method GET is not allowed on /api/webhook"),
		testcaddy.Case("POST", "/api/webhook", `{}`, nil, 401, "webhook signature is missing or wrong"),
		testcaddy.Case("POST", "/api/webhook", `{`, []string{"X-Sig", sign("s", "{")}, 400, "malformed JSON body"),
	})
}

// A Start that fails after the provider session exists stores and binds
// it: the retry resumes it rather than paying for another.
func TestKitStartFailsAfterCreate(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s\n\t\t\tfail on", ""))
	c := testcaddy.Client()
	before := kitStats.starts.Load()
	st, _, m := do(t, c, "GET", in.URL("site", "/api/start"), "")
	if st != 502 {
		t.Fatalf("failing start: %d %v", st, m)
	}
	st, _, m = do(t, c, "GET", in.URL("site", "/api/start"), "")
	if st != 200 || m["sessionId"] == nil || kitStats.starts.Load() != before+1 {
		t.Fatalf("retry: %d %v, %d starts", st, m, kitStats.starts.Load()-before)
	}
}

func TestKitToken(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s", ""))
	c := testcaddy.Client()
	do(t, c, "GET", in.URL("site", "/api/start"), "")
	before := kitStats.refreshes.Load()
	var wg sync.WaitGroup
	toks := make([]any, 8)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, m := do(t, c, "GET", in.URL("site", "/api/token"), "")
			if st == 200 && m["expiresAt"] != nil {
				toks[i] = m["token"]
			}
		}()
	}
	wg.Wait()
	if n := kitStats.refreshes.Load() - before; n != 1 {
		t.Fatalf("%d token fetches for concurrent requests, want 1", n)
	}
	for _, tok := range toks {
		if tok == nil || tok != toks[0] {
			t.Fatalf("tokens %v", toks)
		}
	}
	// Cached: no new fetch.
	_, _, m := do(t, c, "GET", in.URL("site", "/api/token"), "")
	if m["token"] != toks[0] || kitStats.refreshes.Load() != before+1 {
		t.Fatalf("cached token: %v", m)
	}
}

// The token a Start returns seeds the cache: /token answers it unfetched.
func TestKitTokenFromStart(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s\n\t\t\ttoken on", ""))
	c := testcaddy.Client()
	do(t, c, "GET", in.URL("site", "/api/start"), "")
	before := kitStats.refreshes.Load()
	_, _, m := do(t, c, "GET", in.URL("site", "/api/token"), "")
	if m["token"] != "tok-start" || kitStats.refreshes.Load() != before {
		t.Fatalf("token: %v", m)
	}
}

func TestKitWebhook(t *testing.T) {
	in := testcaddy.Start(t, kitCfg("secret s", ""))
	c := testcaddy.Client()
	_, _, a := do(t, c, "GET", in.URL("site", "/api/start"), "")
	ref := a["sessionId"].(string)
	send := func(e fakeEvent) int {
		b, _ := json.Marshal(e)
		st, _, _ := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), string(b), "X-Sig", sign("s", string(b)))
		return st
	}
	view := func() map[string]any {
		_, _, v := do(t, c, "GET", in.URL("site", "/api/session"), "")
		return v
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		ev             fakeEvent
		status, result string
		events         int
	}{
		{fakeEvent{Ref: ref, Key: "started", Status: "started"}, "started", "pending", 1},
		{fakeEvent{Ref: ref, Key: "d1", Status: "resubmission_requested", At: t0, Decision: true}, "resubmission_requested", "pending", 2},
		{fakeEvent{Ref: ref, Key: "d3", Status: "approved", Result: "verified", At: t0.Add(2 * time.Hour), Decision: true}, "approved", "verified", 3},
		// replayed: recorded once
		{fakeEvent{Ref: ref, Key: "d3", Status: "approved", Result: "verified", At: t0.Add(2 * time.Hour), Decision: true}, "approved", "verified", 3},
		// older decision arriving late: history only
		{fakeEvent{Ref: ref, Key: "d2", Status: "declined", Result: "failed", At: t0.Add(time.Hour), Decision: true}, "approved", "verified", 4},
		// progress after a result: history only
		{fakeEvent{Ref: ref, Key: "submitted", Status: "submitted"}, "approved", "verified", 5},
		// a later decision replaces it
		{fakeEvent{Ref: ref, Key: "d4", Status: "declined", Result: "failed", At: t0.Add(3 * time.Hour), Decision: true}, "declined", "failed", 6},
	}
	for i, s := range steps {
		if st := send(s.ev); st != 200 {
			t.Fatalf("step %d: %d", i, st)
		}
		v := view()
		if v["status"] != s.status || v["result"] != s.result || len(v["events"].([]any)) != s.events {
			t.Fatalf("step %d: %v", i, v)
		}
	}
	// A session this handler never started is acknowledged.
	if st := send(fakeEvent{Ref: "elsewhere", Key: "k"}); st != 200 {
		t.Fatalf("unknown ref: %d", st)
	}
	// Without a secret: 403, fail closed.
	in2 := testcaddy.Start(t, kitCfg("token on", ""))
	st, _, m := do(t, testcaddy.Client(), "POST", in2.URL("site", "/api/webhook"), `{}`, "X-Sig", sign("", "{}"))
	if st != 403 || !strings.Contains(fmt.Sprint(m["error"]), "no webhook secret") {
		t.Fatalf("no secret: %d %v", st, m)
	}
}

func TestKitRouteNeedsInterface(t *testing.T) {
	err := testcaddy.LoadError(t, `
http://127.0.0.1:@@site@@ {
	idv {
		kitbad
	}
}`)
	if err == nil || !strings.Contains(err.Error(), "not a provider.Starter") {
		t.Fatalf("error %v", err)
	}
}

// kitBad declares a start route without implementing Starter.
type kitBad struct{}

func init() { caddy.RegisterModule(kitBad{}) }

func (kitBad) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.kitbad", New: func() caddy.Module { return new(kitBad) }}
}
func (kitBad) ProvisionIDV(caddy.Context, *provider.Host) error { return nil }
func (kitBad) Secrets() []string                                { return nil }
func (kitBad) Routes() []provider.Route {
	return []provider.Route{{Path: "/start", Kind: provider.StartSession}}
}
func (kitBad) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { d.Next(); return nil }

// kitPlain does not sign its webhooks: webhook_auth applies.
type kitPlain struct{ f kitFake }

func init() { caddy.RegisterModule(kitPlain{}) }

func (kitPlain) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.kitplain", New: func() caddy.Module { return new(kitPlain) }}
}
func (p *kitPlain) UnmarshalCaddyfile(d *caddyfile.Dispenser) error  { d.Next(); return nil }
func (p *kitPlain) ProvisionIDV(caddy.Context, *provider.Host) error { return nil }
func (p *kitPlain) Secrets() []string                                { return nil }
func (p *kitPlain) Routes() []provider.Route {
	return []provider.Route{{Path: "/start", Kind: provider.StartSession}, {Path: "/webhook", Kind: provider.SignedWebhook}}
}
func (p *kitPlain) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	return p.f.Start(ctx, in)
}
func (p *kitPlain) StartAnswer(route string, s *session.Session) map[string]any {
	return p.f.StartAnswer(route, s)
}
func (p *kitPlain) ParseWebhook(h http.Header, b []byte) ([]provider.KitEvent, error) {
	return p.f.ParseWebhook(h, b)
}

func TestKitWebhookAuthWithoutVerifier(t *testing.T) {
	cfg := func(extra string) string {
		return "http://127.0.0.1:@@site@@ {\n\tidv {\n\t\tkitplain\n\t\t" + extra + "\n\t}\n}"
	}
	in := testcaddy.Start(t, cfg(""))
	st, _, _ := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), `{"ref":"x","key":"k"}`)
	if st != 403 {
		t.Fatalf("without webhook_auth: %d", st)
	}
	_ = caddy.Stop()
	in = testcaddy.Start(t, cfg("webhook_auth header X-Hook s3cret"))
	c := testcaddy.Client()
	_, _, a := do(t, c, "GET", in.URL("site", "/api/start"), "")
	body := fmt.Sprintf(`{"ref":%q,"key":"k1","status":"done","result":"verified","decision":true}`, a["sessionId"])
	if st, _, _ := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), body, "X-Hook", "wrong"); st != 401 {
		t.Fatalf("wrong credentials: %d", st)
	}
	if st, _, _ := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), body, "X-Hook", "s3cret"); st != 200 {
		t.Fatalf("right credentials: %d", st)
	}
	if _, _, v := do(t, c, "GET", in.URL("site", "/api/session"), ""); v["result"] != "verified" {
		t.Fatalf("%v", v)
	}
}
