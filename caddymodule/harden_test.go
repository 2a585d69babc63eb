package caddymodule_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/regula"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// chromeNav are the Fetch Metadata headers Chromium sends on a top-level
// navigation (a link click or a form post) from another site.
var chromeNav = []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Fetch-User", "?1"}

func hdrs(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestPassthroughNotUsableCrossSite: the session cookie lends its token to a
// passthrough call only with X-IDV: 1, and navigations or other sites'
// requests never reach the provider, whatever they carry.
func TestPassthroughNotUsableCrossSite(t *testing.T) {
	in := testcaddy.Start(t, cfg("cors_origins https://app.example.com"))
	c := testcaddy.Client()
	startSession(t, in, c)
	u := in.URL("site", "/api/0/omni/get/score")
	idv := []string{"X-IDV", "1"}
	for _, tc := range []struct {
		name   string
		method string
		hdr    []string
		want   int
	}{
		{"cookie alone", "GET", nil, 401},
		{"cookie with X-IDV: 0", "GET", []string{"X-IDV", "0"}, 401},
		{"link from another site", "GET", chromeNav, 403},
		{"link from another site, X-IDV", "GET", hdrs(chromeNav, idv), 403},
		{"form post from another site", "POST", hdrs(chromeNav, []string{"Origin", "https://evil.example"}, idv), 403},
		{"same-origin navigation", "GET", hdrs([]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}, idv), 403},
		{"fetch from a sibling subdomain", "GET", hdrs([]string{"Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors", "Origin", "http://other.localhost"}, idv), 403},
		{"image from another site", "GET", hdrs([]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}, idv), 403},
		{"unlisted method", "PROPFIND", idv, 405},
		{"TRACE", "TRACE", idv, 405},
		{"page's own fetch", "GET", hdrs([]string{"Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty"}, idv), 200},
		{"listed origin's fetch", "GET", hdrs([]string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors", "Origin", "https://app.example.com"}, idv), 200},
		{"not a browser", "GET", idv, 200},
	} {
		before := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "get/score")
		status, h, m := do(t, c, tc.method, u, "", tc.hdr...)
		if status != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, status, m, tc.want)
		}
		if cc := h.Values("Cache-Control"); len(cc) != 1 || cc[0] != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", tc.name, cc)
		}
		if status == 405 && !strings.Contains(h.Get("Allow"), "PATCH") {
			t.Errorf("%s: Allow %q", tc.name, h.Get("Allow"))
		}
		reached := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "get/score") - before
		if (tc.want == 200) != (reached == 1) {
			t.Errorf("%s: %d calls reached the provider", tc.name, reached)
		}
	}
	// The provider's own token header needs no cookie and no X-IDV.
	_, _, ob := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "")
	if status, _, m := do(t, testcaddy.Client(), "GET", u, "", "X-Incode-Hardware-Id", ob["token"].(string)); status != 200 {
		t.Fatalf("token header: %d %v", status, m)
	}
	// Token-server answers are not cached either, and a listed origin may
	// send X-IDV.
	if _, h, _ := do(t, c, "GET", in.URL("site", "/api/onboarding-url"), ""); h.Get("Cache-Control") != "no-store" {
		t.Fatalf("onboarding-url Cache-Control %q", h.Get("Cache-Control"))
	}
	status, h, _ := do(t, c, "OPTIONS", u, "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-idv")
	if status != 204 || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-IDV") {
		t.Fatalf("preflight: %d %v", status, h)
	}
}

// regulaCfg is a Regula site (any host) against the sandbox.
const regulaCfg = `
http://127.0.0.1:@@site@@ {
	idv {
		regula {
			host        http://127.0.0.1:@@sandbox@@
			api_key     regula-key
			workflow_id wf-test
		}
		session_quota off
	}
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		regula {
			api_key     regula-key
			workflow_id wf-test
		}
	}
}`

// TestEncodedBillablePathRefused: a percent-encoded unreserved character
// does not hide a billable call from Regula's passthrough filter.
func TestEncodedBillablePathRefused(t *testing.T) {
	in := testcaddy.Start(t, regulaCfg)
	c := testcaddy.Client()
	if status, _, m := do(t, c, "GET", in.URL("site", "/api/start"), ""); status != 200 {
		t.Fatalf("start: %d %v", status, m)
	}
	sb := in.URL("sandbox", "")
	sessions := testcaddy.CountCalls(testcaddy.Calls(t, sb), "sessions")
	devices := testcaddy.CountCalls(testcaddy.Calls(t, sb), "device")
	for _, p := range []string{"session%73", "%73essions", "Session%53", "sessio%6e%73", "%64evice/ephemeral", "devic%65/ephemeral", "device/%65phemeral", "v%31/deeplink"} {
		status, _, m := do(t, c, "POST", in.URL("site", "/api/idv/"+p), `{}`, "X-IDV", "1")
		if status != 400 && status != 403 {
			t.Errorf("POST /api/idv/%s: %d %v, want 400 or 403", p, status, m)
		}
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, sb), "sessions"); n != sessions {
		t.Fatalf("encoded paths created %d billable sessions", n-sessions)
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, sb), "device"); n != devices {
		t.Fatalf("encoded paths minted %d devices", n-devices)
	}
}

// catchAll is cfg on a site address without a host (every shipped
// Caddyfile's form), with extra options.
func catchAll(extra string) string {
	return strings.Replace(cfg(extra), "http://127.0.0.1:@@site@@ {", "http://:@@site@@ {", 1)
}

// TestRedirectNotWidenedByHost: the allowed redirect origins come from the
// configuration, never from the request's Host header, and an HTTPS client
// (directly or through a trusted TLS-terminating proxy) is not sent to http.
func TestRedirectNotWidenedByHost(t *testing.T) {
	start := func(in *testcaddy.Instance, redirect string, hdr ...string) (int, map[string]any) {
		status, _, m := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start?new=1&redirectionUrl="+url.QueryEscape(redirect)), "", hdr...)
		return status, m
	}
	wild := testcaddy.Start(t, catchAll(""))
	if status, m := start(wild, "https://evil.example/x", "Host", "evil.example"); status != 400 || !strings.Contains(fmt.Sprint(m["error"]), "redirect_origins") {
		t.Fatalf("catch-all site, Host evil.example: %d %v", status, m)
	}
	if status, m := start(wild, wild.URL("site", "/done")); status != 400 {
		t.Fatalf("catch-all site without redirect_origins: %d %v", status, m)
	}
	listed := testcaddy.Start(t, catchAll("redirect_origins https://app.example.com"))
	if status, m := start(listed, "https://app.example.com/done", "Host", "evil.example"); status != 200 {
		t.Fatalf("listed origin: %d %v", status, m)
	}
	if status, m := start(listed, "https://evil.example/x", "Host", "evil.example"); status != 400 {
		t.Fatalf("unlisted origin: %d %v", status, m)
	}

	// A site with a host name: that name, in http only for an http client.
	proxied := testcaddy.Start(t, cfg(""), testcaddy.Options{Global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict\n\t}"})
	own := proxied.URL("site", "/done")
	if status, m := start(proxied, own); status != 200 {
		t.Fatalf("own origin: %d %v", status, m)
	}
	if status, m := start(proxied, "https://127.0.0.1/done"); status != 200 {
		t.Fatalf("own host in https: %d %v", status, m)
	}
	if status, m := start(proxied, own, "X-Forwarded-Proto", "https"); status != 400 || !strings.Contains(fmt.Sprint(m["error"]), "HTTPS") {
		t.Fatalf("http redirect for an HTTPS client: %d %v", status, m)
	}
	// X-Forwarded-Proto of a peer that is not trusted is ignored.
	plain := testcaddy.Start(t, cfg(""))
	if status, m := start(plain, plain.URL("site", "/done"), "X-Forwarded-Proto", "https"); status != 200 {
		t.Fatalf("untrusted X-Forwarded-Proto: %d %v", status, m)
	}
}

// TestSecureCookieBehindTrustedProxy: the session cookie is Secure when the
// client spoke HTTPS to a trusted TLS-terminating proxy, and only then.
func TestSecureCookieBehindTrustedProxy(t *testing.T) {
	secure := func(in *testcaddy.Instance, hdr ...string) bool {
		status, h, m := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "", hdr...)
		if status != 200 {
			t.Fatalf("start: %d %v", status, m)
		}
		for _, sc := range h.Values("Set-Cookie") {
			if strings.HasPrefix(sc, caddymodule.Cookie+"=") {
				return strings.Contains(sc, "; Secure")
			}
		}
		t.Fatal("no session cookie")
		return false
	}
	trusted := testcaddy.Start(t, cfg(""), testcaddy.Options{Global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}"})
	if !secure(trusted, "X-Forwarded-Proto", "https") {
		t.Fatal("HTTPS through a trusted proxy: cookie not Secure")
	}
	if secure(trusted, "X-Forwarded-Proto", "http") {
		t.Fatal("http through a trusted proxy: cookie Secure")
	}
	plain := testcaddy.Start(t, cfg(""))
	if secure(plain, "X-Forwarded-Proto", "https") {
		t.Fatal("an untrusted peer's X-Forwarded-Proto made the cookie Secure")
	}
}

// TestQuotaBehindLoadBalancer: with trusted_proxies and
// trusted_proxies_strict, each client behind the balancer has its own quota,
// and prepending addresses to X-Forwarded-For does not give a new one.
func TestQuotaBehindLoadBalancer(t *testing.T) {
	in := testcaddy.Start(t, cfg("session_quota 2 10m"), testcaddy.Options{LogFile: true,
		Global: "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t\ttrusted_proxies_strict\n\t}"})
	get := func(xff string) int {
		status, _, _ := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "", "X-Forwarded-For", xff)
		return status
	}
	for i := 0; i < 2; i++ {
		if s := get("203.0.113.1"); s != 200 {
			t.Fatalf("client a, start %d: %d", i+1, s)
		}
	}
	if s := get("203.0.113.1"); s != 429 {
		t.Fatalf("client a over its quota: %d", s)
	}
	for _, spoof := range []string{"198.51.100.7, 203.0.113.1", "10.9.9.9,203.0.113.1"} {
		if s := get(spoof); s != 429 {
			t.Fatalf("client a rotating X-Forwarded-For (%s): %d", spoof, s)
		}
	}
	if s := get("203.0.113.2"); s != 200 {
		t.Fatalf("client b shares client a's quota: %d", s)
	}
	if strings.Contains(in.Logs(), "session_quota: ") {
		t.Fatalf("a warning with trusted_proxies_strict set:\n%s", in.Logs())
	}
}

// TestQuotaWarnsAboutUntrustedProxy: the first request that comes through a
// proxy the server does not trust (or trusts without strict parsing) logs
// a WARN while the quota is on.
func TestQuotaWarnsAboutUntrustedProxy(t *testing.T) {
	for _, tc := range []struct{ name, global, quota, want string }{
		{"untrusted", "", "", "does not trust"},
		{"not strict", "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", "", "without trusted_proxies_strict"},
		{"quota off", "", "session_quota off", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testcaddy.Start(t, cfg(tc.quota), testcaddy.Options{LogFile: true, Global: tc.global})
			do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session"), "")
			if strings.Contains(in.Logs(), "session_quota: ") {
				t.Fatal("warned without a proxy in front")
			}
			do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session"), "", "X-Forwarded-For", "203.0.113.1")
			do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session"), "", "X-Forwarded-For", "203.0.113.1")
			logs := in.Logs()
			n := strings.Count(logs, "session_quota: ")
			if tc.want == "" {
				if n != 0 {
					t.Fatalf("warned with the quota off:\n%s", logs)
				}
				return
			}
			if n != 1 || !strings.Contains(logs, tc.want) || !strings.Contains(logs, `"level":"warn"`) {
				t.Fatalf("want one WARN containing %q, got %d:\n%s", tc.want, n, logs)
			}
		})
	}
}

// TestInvalidQueryTextRefused: invalid UTF-8 or a NUL in a token-server
// parameter is a 400 naming it, before any provider call.
func TestInvalidQueryTextRefused(t *testing.T) {
	in := testcaddy.Start(t, cfg(""))
	for _, q := range []struct{ query, field string }{
		{"externalCustomerId=%ff", "externalCustomerId"},
		{"externalCustomerId=a%00b", "externalCustomerId"},
		{"externalUserId=%c3%28", "externalUserId"},
		{"redirectionUrl=" + url.QueryEscape(in.URL("site", "/")) + "%fe", "redirectionUrl"},
		{"new=1&uniqueId=%00", "uniqueId"},
		{"x%ff=1", "query parameter name"},
	} {
		for _, route := range []string{"/api/start", "/api/onboarding-url"} {
			status, _, m := do(t, testcaddy.Client(), "GET", in.URL("site", route+"?"+q.query), "")
			if status != 400 || !strings.Contains(fmt.Sprint(m["error"]), q.field) {
				t.Errorf("%s?%s: %d %v, want 400 naming %s", route, q.query, status, m, q.field)
			}
		}
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "omni/start"); n != 0 {
		t.Fatalf("invalid text reached the provider: %d starts", n)
	}
}

// TestSPACaddyfile: the standard single-page-app site (try_files to
// index.html, file_server) works unchanged with idv in it.
func TestSPACaddyfile(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<p>the app</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	site := strings.Replace(cfg("webhook_auth header X-Webhook-Secret s3cret"), "\trespond \"frontend\"\n",
		"\troot * "+root+"\n\ttry_files {path} /index.html\n\tfile_server\n", 1)
	if !strings.Contains(site, "try_files") {
		t.Fatal("the test Caddyfile changed: update this test")
	}
	in := testcaddy.Start(t, site)
	c := testcaddy.Client()
	for _, p := range []string{"/", "/some/client/route"} {
		if status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", p), nil); status != 200 || !strings.Contains(body, "the app") {
			t.Fatalf("%s: %d %q", p, status, body)
		}
	}
	ob := startSession(t, in, c)
	status, _, m := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), webhookBody(ob["interviewId"].(string)), "X-Webhook-Secret", "s3cret")
	if status != 200 || m["success"] != true {
		t.Fatalf("webhook: %d %v", status, m)
	}
	if status, _, m := do(t, c, "GET", in.URL("site", "/api/session?x=1"), ""); status != 200 || m["uniqueId"] != ob["uniqueId"] {
		t.Fatalf("session: %d %v", status, m)
	}
	if status, _, m := do(t, c, "GET", in.URL("site", "/api/no-such-route"), ""); status != 404 || m["success"] != false {
		t.Fatalf("unknown route: %d %v", status, m)
	}
}

// TestWebhookAuthRateLimited: failed webhook authentications and token
// requests are limited per client (429 JSON with Retry-After); a client
// with the right credentials is not.
func TestWebhookAuthRateLimited(t *testing.T) {
	in := testcaddy.Start(t, cfg("webhook_auth header X-Idv-Hook s3cret-value"))
	ob := startSession(t, in, testcaddy.Client())
	hook := in.URL("site", "/api/webhook")
	body := webhookBody(ob["interviewId"].(string))
	for i := 0; i < 3; i++ { // the right credential never counts
		if status, _, m := do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", "s3cret-value"); status != 200 {
			t.Fatalf("right credential: %d %v", status, m)
		}
	}
	for i := 0; i < caddymodule.AuthBurst; i++ {
		if status, _, m := do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", fmt.Sprint("guess", i)); status != 401 {
			t.Fatalf("guess %d: %d %v", i, status, m)
		}
	}
	status, h, m := do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", "one more guess")
	if status != 429 || h.Get("Retry-After") == "" || m["success"] != false {
		t.Fatalf("guess past the limit: %d %v %v", status, h, m)
	}

	oauth := testcaddy.Start(t, cfg("webhook_auth oauth2 incode-client cs"))
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	for i := 0; i < caddymodule.AuthBurst; i++ {
		if status, _, m := do(t, testcaddy.Client(), "POST", oauth.URL("site", "/api/webhook/token"), form,
			"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic aW5jb2RlLWNsaWVudDp3cm9uZw=="); status != 401 {
			t.Fatalf("token request %d: %d %v", i, status, m)
		}
	}
	status, h, m = do(t, testcaddy.Client(), "POST", oauth.URL("site", "/api/webhook/token"), form,
		"Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic aW5jb2RlLWNsaWVudDpjcw==")
	if status != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("token request past the limit: %d %v %v", status, h, m)
	}
}

// TestWebhookGuessesInFlightEachPay: guesses sent at once are checked no
// more often than the budget allows (each takes its attempt before it is
// checked, not after it failed).
func TestWebhookGuessesInFlightEachPay(t *testing.T) {
	in := testcaddy.Start(t, cfg("webhook_auth header X-Idv-Hook s3cret-value"))
	ob := startSession(t, in, testcaddy.Client())
	hook := in.URL("site", "/api/webhook")
	body := webhookBody(ob["interviewId"].(string))
	const guesses = 40
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < guesses; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			status, _, _ := do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", fmt.Sprint("guess", i))
			statuses <- status
		}(i)
	}
	close(start)
	wg.Wait()
	close(statuses)
	checked := 0
	for s := range statuses {
		switch s {
		case 401:
			checked++
		case 429:
		default:
			t.Fatalf("a guess got %d", s)
		}
	}
	// The budget refills one attempt per AuthEvery: a slow run may earn one.
	if checked > caddymodule.AuthBurst+1 {
		t.Fatalf("%d of %d concurrent guesses were checked, budget %d", checked, guesses, caddymodule.AuthBurst)
	}
}

// TestCredentialHeadersOutOfAccessLog: with a plain `log` directive (no
// filter), neither the configured webhook header nor a provider credential
// header reaches the access log, while the requests are still logged.
func TestCredentialHeadersOutOfAccessLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	site := strings.Replace(cfg("webhook_auth header X-Idv-Hook hook-secret-value-1"), "\trespond \"frontend\"\n",
		"\tlog {\n\t\toutput file "+logPath+"\n\t}\n\trespond \"frontend\"\n", 1)
	in := testcaddy.Start(t, site)
	c := testcaddy.Client()
	ob := startSession(t, in, c)
	_, _, st := do(t, c, "GET", in.URL("site", "/api/start"), "")
	tok, _ := st["token"].(string)
	if tok == "" {
		t.Fatalf("start: %v", st)
	}
	hook := in.URL("site", "/api/webhook")
	body := webhookBody(ob["interviewId"].(string))
	if status, _, m := do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", "hook-secret-value-1"); status != 200 {
		t.Fatalf("webhook: %d %v", status, m)
	}
	do(t, testcaddy.Client(), "POST", hook, body, "X-Idv-Hook", "wrong-guess-value-2")
	if status, _, m := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/0/omni/get/score?x=token-query"), "", "X-Incode-Hardware-Id", tok); status != 200 {
		t.Fatalf("passthrough: %d %v", status, m)
	}
	do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session?x-api-key=query-key-value-5&keep=visible-query-6"), "", "X-Api-Key", "client-api-key-3", "X-Trace", "visible-value-4")
	// A uniqueId in the query resumes a session: with no credential header
	// at all, it still never reaches the log (nor in a ';' query).
	uid := ob["uniqueId"].(string)
	do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start?uniqueId="+uid+"&keep=visible-query-7"), "")
	do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session?a=1;uniqueId="+uid), "")

	// The lines are written once each answer is sent: wait for all seven.
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		logs = string(b)
		if strings.Count(logs, `"uri":"/api/`) >= 7 && strings.Contains(logs, "visible-value-4") {
			break
		}
	}
	for _, want := range []string{`"uri":"/api/webhook"`, `"uri":"/api/0/omni/get/score?x=token-query"`, "visible-value-4", "visible-query-6", "visible-query-7", `"X-Idv-Hook":["REDACTED"]`, `"X-Incode-Hardware-Id":["REDACTED"]`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log lacks %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"hook-secret-value-1", "wrong-guess-value-2", tok, "client-api-key-3", "query-key-value-5", uid} {
		if strings.Contains(logs, secret) {
			t.Errorf("the access log holds %.24s…:\n%s", secret, logs)
		}
	}
}

// TestDefaultWebhookSecretOnlyForTheSandbox: a webhook credential taken from
// a placeholder's written-in default ({env.NAME:default}, NAME unset) is a
// public value: accepted against a provider on this machine (the sandbox),
// refused at start against any other, and a set variable is always fine.
func TestDefaultWebhookSecretOnlyForTheSandbox(t *testing.T) {
	os.Unsetenv("IDV_TEST_HOOK_SECRET")
	hook := "webhook_auth header X-Idv-Hook {env.IDV_TEST_HOOK_SECRET:public-sandbox-secret}"
	testcaddy.Start(t, cfg(hook)) // the sandbox on loopback: starts

	remote := strings.Replace(cfg(hook), "api_url http://127.0.0.1:@@sandbox@@", "api_url https://incode.example.test", 1)
	err := testcaddy.LoadError(t, remote)
	if err == nil || !strings.Contains(err.Error(), "placeholder's default") {
		t.Fatalf("a real provider with the default webhook secret: %v, want a refusal", err)
	}
	t.Setenv("IDV_TEST_HOOK_SECRET", "a-real-secret-from-the-environment")
	if err := testcaddy.LoadError(t, remote); err != nil && strings.Contains(err.Error(), "placeholder's default") {
		t.Fatalf("a set variable was refused: %v", err)
	}
}

// TestSandboxHeader: answers under the prefix say whether the provider's API
// is on this machine (the sandbox), for a page's "sandbox" badge.
func TestSandboxHeader(t *testing.T) {
	in := testcaddy.Start(t, cfg("webhook_auth none"))
	if _, h, _ := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session"), ""); h.Get("X-IDV-Sandbox") != "1" {
		t.Fatalf("sandbox on loopback: X-IDV-Sandbox %q, want 1", h.Get("X-IDV-Sandbox"))
	}
	remote := testcaddy.Start(t, strings.Replace(cfg("webhook_auth none"), "api_url http://127.0.0.1:@@sandbox@@", "api_url https://incode.example.test", 1))
	if _, h, _ := do(t, testcaddy.Client(), "GET", remote.URL("site", "/api/session"), ""); h.Get("X-IDV-Sandbox") != "0" {
		t.Fatalf("a remote API: X-IDV-Sandbox %q, want 0", h.Get("X-IDV-Sandbox"))
	}
}
