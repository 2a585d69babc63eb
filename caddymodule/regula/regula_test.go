package regula_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestStartAnswersHandoffURL: /start answers the four fields, binds the
// browser with the session cookie, and the handoff URL is Regula's
// /capture?url=<encoded /mobile?authorization=<token>&sessionId=<id>> on the
// configured host, which the (emulated) platform accepts.
func TestStartAnswersHandoffURL(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	before := time.Now().UTC()
	st := s.start(c, "GET", "/api/start", "")
	after := time.Now().UTC()

	h := decodeHandoff(t, st.URL)
	host := fmt.Sprintf("127.0.0.1:%d", s.in.Ports["sandbox"])
	if h.Outer.Scheme != "http" || h.Outer.Host != host || h.Outer.Path != "/capture" || len(h.Outer.Query()) != 1 {
		t.Fatalf("handoff URL %s: want http://%s/capture?url=...", st.URL, host)
	}
	if h.Inner.Scheme != "http" || h.Inner.Host != host || h.Inner.Path != "/mobile" {
		t.Fatalf("mobile link %s: want http://%s/mobile?...", h.Inner, host)
	}
	if h.SessionID != st.SessionID {
		t.Fatalf("mobile link sessionId %q, answer sessionId %q", h.SessionID, st.SessionID)
	}
	// The token is used verbatim ("Token <jwt>"), its space encoded as %20.
	if !strings.HasPrefix(h.Token, "Token ey") || !strings.Contains(h.Inner.RawQuery, "authorization=Token%20ey") {
		t.Fatalf("mobile link authorization: %s", h.Inner.RawQuery)
	}
	exp, err := time.Parse(time.RFC3339, st.ExpiresAt)
	if err != nil || !strings.HasSuffix(st.ExpiresAt, "Z") {
		t.Fatalf("expiresAt %q is not RFC 3339 UTC: %v", st.ExpiresAt, err)
	}
	if exp.Before(before.Add(time.Hour-time.Second)) || exp.After(after.Add(time.Hour)) {
		t.Fatalf("expiresAt %s is not start+ttl (1h)", exp)
	}
	u, _ := url.Parse(s.site("/api/start"))
	var bound string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "idv_session" {
			bound = ck.Value
		}
	}
	if bound != st.UniqueID {
		t.Fatalf("session cookie %q, want the uniqueId %q", bound, st.UniqueID)
	}
	// The platform takes the handoff URL: its capture page shows the form.
	status, _, body := testcaddy.Do(t, http.DefaultClient, "GET", st.URL, nil)
	for _, id := range []string{`id="outcome-pass"`, `id="outcome-fail"`, `id="submit"`, `id="mobile-link"`} {
		if status != http.StatusOK || !strings.Contains(body, id) {
			t.Fatalf("capture page: %d, no %s: %s", status, id, body)
		}
	}
	// onboarding-url is the same route.
	if o := s.start(c, "GET", "/api/onboarding-url?new=1", ""); o.UniqueID == st.UniqueID || !strings.Contains(o.URL, "/capture?url=") {
		t.Fatalf("onboarding-url: %+v", o)
	}
	if status, _, body := testcaddy.Do(t, c, "GET", s.site("/other"), nil); status != http.StatusOK || body != "frontend" {
		t.Fatalf("frontend: %d %s", status, body)
	}
}

// TestAPIKeyOnlyOnEphemeral: across start, resume, passthrough and the
// hosted page, the API key reaches the platform only on
// /api/device/ephemeral; everything else carries the session's ephemeral
// token, and a browser's own credentials are not forwarded.
func TestAPIKeyOnlyOnEphemeral(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	s.start(testcaddy.Client(), "GET", "/api/start?uniqueId="+st.UniqueID, "")
	status, _, body := testcaddy.Do(t, c, "POST", s.site("/api/idv/documents/upload"), strings.NewReader(`{"a":1}`),
		"Authorization", "Bearer browser-credential", "X-Api-Key", "browser-key", "X-IDV", "1")
	if status != http.StatusOK {
		t.Fatalf("passthrough: %d %s", status, body)
	}
	if status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/idv/sessions/"+st.SessionID), nil, "X-IDV", "1"); status != http.StatusOK {
		t.Fatalf("passthrough read: %d %s", status, body)
	}
	testcaddy.Do(t, http.DefaultClient, "GET", st.URL, nil)

	reqs := s.requests()
	ephemeral := 0
	for _, r := range reqs {
		if r.Path == "/api/device/ephemeral" {
			ephemeral++
		}
		if r.APIKey != (r.Path == "/api/device/ephemeral") {
			t.Errorf("%s %s: api key sent: %v", r.Method, r.Path, r.APIKey)
		}
	}
	if ephemeral != 1 || len(reqs) < 5 {
		t.Fatalf("want one ephemeral call among at least 5 requests, got %+v", reqs)
	}
	calls := s.calls()
	for k, n := range calls {
		if strings.HasSuffix(k, " api_key") && k != "regula api/device/ephemeral api_key" {
			t.Errorf("%s: %d calls with the API key", k, n)
		}
	}
	for _, k := range []string{"regula api/device/ephemeral api_key", "regula api/sessions ephemeral_token",
		"regula api/* ephemeral_token", "regula api/sessions/{id} ephemeral_token"} {
		if calls[k] != 1 {
			t.Errorf("%s: %d calls, want 1 (all: %v)", k, calls[k], calls)
		}
	}
}

// TestResumeByUniqueID: a uniqueId resumes its session from storage with no
// upstream call, from any browser; unknown or malformed ids are a 400.
func TestResumeByUniqueID(t *testing.T) {
	s := startStack(t, stackOpts{})
	st := s.start(testcaddy.Client(), "GET", "/api/start", "")
	s.reset()
	for _, path := range []string{"/api/start?uniqueId=", "/api/onboarding-url?uniqueId="} {
		c := testcaddy.Client()
		// From the site's own page (a link from elsewhere resumes it too,
		// but does not bind the browser: see the core's planting test).
		if got := s.start(c, "GET", path+st.UniqueID, "", "Sec-Fetch-Site", "same-origin"); got != st {
			t.Fatalf("%s: %+v, want %+v", path, got, st)
		}
		// The browser is bound to it now: its cookie resumes it too.
		if got := s.start(c, "GET", "/api/start", ""); got != st {
			t.Fatalf("cookie after %s: %+v, want %+v", path, got, st)
		}
	}
	if got := s.start(testcaddy.Client(), "POST", "/api/start", `{"uniqueId":"`+st.UniqueID+`"}`); got != st {
		t.Fatalf("POST uniqueId: %+v, want %+v", got, st)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid", "", strings.ToUpper(st.UniqueID)} {
		status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", s.site("/api/start?uniqueId="+url.QueryEscape(id)), nil)
		if status != http.StatusBadRequest || !strings.Contains(body, `"success":false`) {
			t.Fatalf("uniqueId %q: %d %s", id, status, body)
		}
	}
	if calls := s.calls(); len(calls) != 0 {
		t.Fatalf("resuming called the platform: %v", calls)
	}
}

// TestCookieResumeAndNew: a browser whose cookie names a live session gets
// it back from /start and /onboarding-url (GET or POST) without a new
// billable session, unless it asks with ?new=1.
func TestCookieResumeAndNew(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	first := s.start(c, "GET", "/api/start", "")
	s.reset()
	for _, r := range [][3]string{{"GET", "/api/start", ""}, {"GET", "/api/onboarding-url", ""}, {"POST", "/api/start", `{}`}, {"POST", "/api/onboarding-url", ""}} {
		if got := s.start(c, r[0], r[1], r[2]); got != first {
			t.Fatalf("%s %s: %+v, want the cookie's session %+v", r[0], r[1], got, first)
		}
	}
	if calls := s.calls(); len(calls) != 0 {
		t.Fatalf("resuming by cookie called the platform: %v", calls)
	}
	fresh := s.start(c, "GET", "/api/start?new=1", "")
	if fresh.UniqueID == first.UniqueID || fresh.SessionID == first.SessionID ||
		decodeHandoff(t, fresh.URL).Token == decodeHandoff(t, first.URL).Token {
		t.Fatalf("?new=1 resumed: %+v", fresh)
	}
	calls := s.calls()
	if calls["regula api/device/ephemeral api_key"] != 1 || calls["regula api/sessions ephemeral_token"] != 1 {
		t.Fatalf("?new=1 calls: %v", calls)
	}
	if got := s.start(c, "GET", "/api/start", ""); got != fresh {
		t.Fatalf("the cookie now names %+v, got %+v", fresh, got)
	}
}

// TestExternalUserID: externalUserId, in a JSON body or the query, reaches
// the session's metadata on the platform; bad values are refused before any
// billable call.
func TestExternalUserID(t *testing.T) {
	s := startStack(t, stackOpts{})
	metadata := func(c *http.Client, sessionID string) map[string]any {
		t.Helper()
		status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/idv/sessions/"+sessionID), nil, "X-IDV", "1")
		var out struct {
			Metadata map[string]any `json:"metadata"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("reading the session: %d %s", status, body)
		}
		return out.Metadata
	}
	c := testcaddy.Client()
	st := s.start(c, "POST", "/api/start", `{"externalUserId":"user-42"}`)
	if m := metadata(c, st.SessionID); m["externalUserId"] != "user-42" {
		t.Fatalf("body externalUserId: metadata %v", m)
	}
	c = testcaddy.Client()
	st = s.start(c, "GET", "/api/start?externalUserId=user%207", "")
	if m := metadata(c, st.SessionID); m["externalUserId"] != "user 7" {
		t.Fatalf("query externalUserId: metadata %v", m)
	}
	c = testcaddy.Client()
	st = s.start(c, "GET", "/api/start", "")
	if m := metadata(c, st.SessionID); len(m) != 0 {
		t.Fatalf("no externalUserId: metadata %v", m)
	}
	s.reset()
	for _, body := range []string{`{"externalUserId":5}`, `{"externalUserId":"` + strings.Repeat("x", 257) + `"}`, `{`} {
		status, _, out := testcaddy.Do(t, testcaddy.Client(), "POST", s.site("/api/start"), strings.NewReader(body))
		if status != http.StatusBadRequest {
			t.Fatalf("POST %.40s: %d %s", body, status, out)
		}
	}
	if calls := s.calls(); len(calls) != 0 {
		t.Fatalf("refused starts called the platform: %v", calls)
	}
}

type echoed struct {
	Path      string `json:"path"`
	Query     string `json:"query"`
	Method    string `json:"method"`
	Bytes     int    `json:"bytes"`
	SHA256    string `json:"sha256"`
	SessionID string `json:"sessionId"`
}

func echo(t *testing.T, c *http.Client, method, u, body string, header ...string) echoed {
	t.Helper()
	// A page's cookie-bound passthrough call carries X-IDV: 1.
	status, _, out := testcaddy.Do(t, c, method, u, strings.NewReader(body), append([]string{"X-IDV", "1"}, header...)...)
	var e echoed
	if status != http.StatusOK || json.Unmarshal([]byte(out), &e) != nil {
		t.Fatalf("%s %s: %d %s", method, u, status, out)
	}
	return e
}

// TestUsersGetTheirOwnTokens: two browsers get two ephemeral tokens, each
// passthrough carries its own browser's token (the platform reports whose
// session the token belongs to), and one user's token cannot read the
// other's session.
func TestUsersGetTheirOwnTokens(t *testing.T) {
	s := startStack(t, stackOpts{})
	a, b := testcaddy.Client(), testcaddy.Client()
	sa, sb := s.start(a, "GET", "/api/start", ""), s.start(b, "GET", "/api/start", "")
	if sa.SessionID == sb.SessionID || decodeHandoff(t, sa.URL).Token == decodeHandoff(t, sb.URL).Token {
		t.Fatalf("two users share a session or token: %+v %+v", sa, sb)
	}
	body := "hello regula"
	sum := sha256.Sum256([]byte(body))
	e := echo(t, a, "PUT", s.site("/api/idv/documents/front?side=1"), body)
	want := echoed{Path: "/api/documents/front", Query: "side=1", Method: "PUT", Bytes: len(body), SHA256: hex.EncodeToString(sum[:]), SessionID: sa.SessionID}
	if e != want {
		t.Fatalf("user A's passthrough: %+v, want %+v", e, want)
	}
	if e := echo(t, b, "GET", s.site("/api/idv/anything"), ""); e.SessionID != sb.SessionID {
		t.Fatalf("user B's passthrough carried session %s, want %s", e.SessionID, sb.SessionID)
	}
	// ?uniqueId= picks the session without a cookie, and is not forwarded.
	e = echo(t, testcaddy.Client(), "GET", s.site("/api/idv/anything?x=1&uniqueId="+sb.UniqueID+"&y=%20"), "")
	if e.SessionID != sb.SessionID || e.Query != "x=1&y=%20" {
		t.Fatalf("uniqueId passthrough: %+v", e)
	}
	if status, _, out := testcaddy.Do(t, a, "GET", s.site("/api/idv/sessions/"+sb.SessionID), nil, "X-IDV", "1"); status != http.StatusForbidden {
		t.Fatalf("user A read user B's session: %d %s", status, out)
	}
	if status, _, out := testcaddy.Do(t, a, "GET", s.site("/api/idv/sessions/"+sa.SessionID), nil, "X-IDV", "1"); status != http.StatusOK {
		t.Fatalf("user A could not read its session: %d %s", status, out)
	}
}

// TestExpiredSession: once ttl has passed, the session no longer resumes
// (400) nor authorizes a passthrough (401) by cookie or uniqueId, the
// platform refuses its token, and /start starts a new session.
func TestExpiredSession(t *testing.T) {
	s := startStack(t, stackOpts{TTL: "2s"})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	if e := echo(t, c, "GET", s.site("/api/idv/live"), ""); e.SessionID != st.SessionID {
		t.Fatalf("live session passthrough: %+v", e)
	}
	var status int
	var body string
	eventually(t, "the session to expire", func() bool {
		status, _, body = testcaddy.Do(t, testcaddy.Client(), "GET", s.site("/api/start?uniqueId="+st.UniqueID), nil)
		return status != http.StatusOK
	})
	if status != http.StatusBadRequest || !strings.Contains(body, "expired") {
		t.Fatalf("resuming an expired session: %d %s", status, body)
	}
	cookie := "idv_session=" + st.UniqueID
	if status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", s.site("/api/idv/live"), nil, "Cookie", cookie, "X-IDV", "1"); status != http.StatusUnauthorized {
		t.Fatalf("passthrough with an expired session's cookie: %d %s", status, body)
	}
	if status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", s.site("/api/idv/live?uniqueId="+st.UniqueID), nil); status != http.StatusUnauthorized {
		t.Fatalf("passthrough with an expired uniqueId: %d %s", status, body)
	}
	tok := decodeHandoff(t, st.URL).Token
	eventually(t, "the platform to refuse the token", func() bool {
		status, _, _ := testcaddy.Do(t, http.DefaultClient, "GET", s.sandbox("/api/live"), nil, "Authorization", tok)
		return status == http.StatusUnauthorized
	})
	if n := s.calls()["regula api/* expired_token"]; n < 1 {
		t.Fatalf("the platform did not see an expired token: %v", s.calls())
	}
	s.reset()
	status, _, body = testcaddy.Do(t, testcaddy.Client(), "GET", s.site("/api/start"), nil, "Cookie", cookie)
	if status != http.StatusOK || strings.Contains(body, st.UniqueID) || s.calls()["regula api/sessions ephemeral_token"] != 1 {
		t.Fatalf("start with an expired cookie did not start a new session: %d %s", status, body)
	}
}

// TestPassthroughWithoutSession: no cookie, an unknown or malformed
// uniqueId, or a cookie naming no session is a 401 that never reaches the
// platform.
func TestPassthroughWithoutSession(t *testing.T) {
	s := startStack(t, stackOpts{})
	for _, r := range []struct{ path, cookie string }{
		{"/api/idv/echo", ""},
		{"/api/idv/echo?uniqueId=" + uuid.NewString(), ""},
		{"/api/idv/echo?uniqueId=bad", ""},
		{"/api/idv/echo", "idv_session=" + uuid.NewString()},
		{"/api/idv/echo", "idv_session=bad"},
	} {
		var hdr []string
		if r.cookie != "" {
			hdr = []string{"Cookie", r.cookie, "X-IDV", "1"}
		}
		status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", s.site(r.path), nil, hdr...)
		if status != http.StatusUnauthorized || !strings.Contains(body, `"success":false`) {
			t.Fatalf("%s (cookie %q): %d %s", r.path, r.cookie, status, body)
		}
	}
	if reqs := s.requests(); len(reqs) != 0 {
		t.Fatalf("refused passthroughs reached the platform: %+v", reqs)
	}
}

// TestHostilePassthroughPaths: paths that could leave /api/ on the platform,
// in any encoding, are a 400 and never reach it, even with a live session.
func TestHostilePassthroughPaths(t *testing.T) {
	s := startStack(t, stackOpts{})
	st := s.start(testcaddy.Client(), "GET", "/api/start", "")
	s.reset()
	for _, p := range []string{
		"/api/idv/../admin",
		"/api/idv/../../admin",
		"/api/idv/%2e%2e/admin",
		"/api/idv/%2E%2E/%2E%2E/admin",
		"/api/idv/.%2e/admin",
		"/api/idv/a/..%2Fadmin",
		"/api/idv/a%2Fb",
		"/api/idv/a%2f..%2f..%2fadmin",
		"/api/idv/%252e%252e/admin",
		"/api/idv/a%5Cb",
		"/api/idv/./echo",
		"/api/idv//echo",
		"/api/idv/",
	} {
		status, body := rawRequest(t, http.DefaultClient, "GET", s.site("/"), p, "Cookie", "idv_session="+st.UniqueID, "X-IDV", "1")
		if status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", p, status, body)
		}
	}
	if reqs := s.requests(); len(reqs) != 0 {
		t.Fatalf("hostile paths reached the platform: %+v", reqs)
	}
	// The same session passes a clean path, so the refusals were the paths.
	status, body := rawRequest(t, http.DefaultClient, "GET", s.site("/"), "/api/idv/echo", "Cookie", "idv_session="+st.UniqueID, "X-IDV", "1")
	if status != http.StatusOK {
		t.Fatalf("clean path: %d %s", status, body)
	}
}

// TestUpstreamFailures: a platform error is a 502 naming its status, a
// malformed answer a 502, a slow platform a 504; the billable calls are
// never retried and no session is stored.
func TestUpstreamFailures(t *testing.T) {
	s := startStack(t, stackOpts{Timeout: "1s"})
	for _, tc := range []struct {
		name     string
		fault    sandbox.Fault
		status   int
		msg      string
		sessions int // calls to api/sessions
	}{
		{"session 500", sandbox.Fault{Provider: "regula", Op: "api/sessions", Status: 500, Times: 1}, 502, "upstream answered 500", 1},
		{"ephemeral 500", sandbox.Fault{Provider: "regula", Op: "api/device/ephemeral", Status: 500, Times: 1}, 502, "upstream answered 500", 0},
		{"ephemeral 401", sandbox.Fault{Provider: "regula", Op: "api/device/ephemeral", Status: 401, Times: 1}, 502, "upstream answered 401", 0},
		{"malformed", sandbox.Fault{Provider: "regula", Op: "api/device/ephemeral", Malformed: true, Times: 1}, 502, "malformed", 0},
		{"slow", sandbox.Fault{Provider: "regula", Op: "api/device/ephemeral", Latency: "3s", Times: 1}, 504, "timed out", 0},
		{"slow session", sandbox.Fault{Provider: "regula", Op: "api/sessions", Latency: "3s", Times: 1}, 504, "timed out", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.reset()
			s.fault(tc.fault)
			c := testcaddy.Client()
			status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/start"), nil)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %s, want %d %q", status, body, tc.status, tc.msg)
			}
			calls := s.calls()
			if calls["regula api/device/ephemeral api_key"] != 1 || calls["regula api/sessions ephemeral_token"] != tc.sessions {
				t.Fatalf("calls %v: want one ephemeral call and %d session calls", calls, tc.sessions)
			}
			u, _ := url.Parse(s.site("/api/start"))
			if len(c.Jar.Cookies(u)) != 0 {
				t.Fatal("a failed start bound a session")
			}
		})
	}
	s.reset()
	c := testcaddy.Client()
	s.start(c, "GET", "/api/start", "")
	s.fault(sandbox.Fault{Provider: "regula", Op: "api/*", Latency: "3s", Times: 1})
	if status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/idv/slow"), nil, "X-IDV", "1"); status != http.StatusGatewayTimeout {
		t.Fatalf("slow passthrough: %d %s", status, body)
	}
}

func postWebhook(t *testing.T, s *stack, body string, header ...string) (int, string) {
	t.Helper()
	status, _, out := testcaddy.Do(t, http.DefaultClient, "POST", s.site("/api/webhook"), strings.NewReader(body), header...)
	return status, out
}

// TestWebhook: an authenticated {"sessionId"} notification makes the site
// read the session's status from the results API, once per state; a status
// in the payload is never trusted.
func TestWebhook(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	secret := []string{"X-Webhook-Secret", "s"}
	if status, out := postWebhook(t, s, `{"sessionId":"`+st.SessionID+`","status":2}`); status != http.StatusUnauthorized {
		t.Fatalf("webhook without credentials: %d %s", status, out)
	}
	for _, body := range []string{`{}`, `{"status":2}`, `{"sessionId":5}`, `{"sessionId":"x","status":"2"}`} {
		if status, out := postWebhook(t, s, body, secret...); status != http.StatusBadRequest {
			t.Fatalf("webhook %s: %d %s", body, status, out)
		}
	}
	// A forged "verified" for a session nobody completed changes nothing
	// but what the provider says: not completed.
	s.reset()
	if status, out := postWebhook(t, s, `{"sessionId":"`+st.SessionID+`","status":2}`, secret...); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, out)
	}
	if n := s.calls()["regula api/sessions/{id} api_key"]; n != 1 {
		t.Fatalf("the status was not read from the results API: %v", s.calls())
	}
	if v := s.session(c); v.Status != "NOT_COMPLETED" || v.Result != "pending" {
		t.Fatalf("a payload's status was trusted: %+v", v)
	}
	// Completed for real: the next notification records it, once.
	if status, _, body := completeForm(t, st.URL, "pass"); status != http.StatusOK {
		t.Fatalf("completing: %d %s", status, body)
	}
	payload := `{"sessionId":"` + st.SessionID + `"}`
	for i := 0; i < 2; i++ { // the second is a retried delivery
		status, out := postWebhook(t, s, payload, secret...)
		var ack struct {
			Timestamp string         `json:"timestamp"`
			Success   bool           `json:"success"`
			Data      map[string]any `json:"data"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(out), &ack) != nil || !ack.Success || ack.Timestamp == "" || ack.Data["sessionId"] != st.SessionID {
			t.Fatalf("webhook delivery %d: %d %s", i+1, status, out)
		}
		v := s.session(c)
		if v.Result != "verified" || v.Status != "VERIFIED" || len(v.Events) != 2 {
			t.Fatalf("after delivery %d: %+v", i+1, v)
		}
	}
	if status, out := postWebhook(t, s, `{"sessionId":"unknown1","status":2}`, secret...); status != http.StatusOK {
		t.Fatalf("webhook for another backend's session: %d %s", status, out)
	}
}

// completeForm posts the hosted page's form.
func completeForm(t *testing.T, pageURL, outcome string) (int, http.Header, string) {
	t.Helper()
	return testcaddy.Do(t, testcaddy.Client(), "POST", pageURL, strings.NewReader("outcome="+outcome),
		"Content-Type", "application/x-www-form-urlencoded")
}

// TestSandboxSendsWebhook: completing a session on the sandbox's hosted page
// delivers the webhook, authenticated, to the site, which reads the result
// from the results API; the first read fails, the site answers 502, and the
// sender's retry lands. The test watches storage rather than /api/session,
// whose refresher could learn the result by itself.
func TestSandboxSendsWebhook(t *testing.T) {
	s := startStack(t, stackOpts{Webhook: true})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	s.fault(sandbox.Fault{Provider: "regula", Op: "api/sessions/{id}", Status: 500, Times: 1})
	if status, _, body := completeForm(t, st.URL, "fail"); status != http.StatusOK || !strings.Contains(body, `id="done"`) {
		t.Fatalf("completing: %d %s", status, body)
	}
	eventually(t, "the webhook", func() bool {
		for f := range testcaddy.Snapshot(t, s.in.Storage) {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), `"result":"failed"`) {
				return true
			}
		}
		return false
	})
	if n := s.calls()["regula api/sessions/{id} api_key"]; n != 2 {
		t.Fatalf("results API reads = %d, want 2 (a failed one, then the retry's)", n)
	}
	if v := s.session(c); v.Result != "failed" || v.Status != "NOT_VERIFIED" || len(v.Events) != 1 {
		t.Fatalf("after the webhook: %+v", v)
	}
}

// TestRefresherLearnsOutcome: with no webhook configured, GET /api/session
// learns the outcome from the results API, with the API key in the
// configured scheme; a redirect parameter is followed after completion.
func TestRefresherLearnsOutcome(t *testing.T) {
	s := startStack(t, stackOpts{Scheme: "ApiKey"})
	a := testcaddy.Client()
	sa := s.start(a, "GET", "/api/start", "")
	if v := s.session(a); v.Result != "pending" || len(v.Events) != 0 {
		t.Fatalf("before completion: %+v", v)
	}
	if status, _, body := completeForm(t, sa.URL, "pass"); status != http.StatusOK || !strings.Contains(body, `id="done"`) {
		t.Fatalf("completing: %d %s", status, body)
	}
	var v view
	eventually(t, "the refresh", func() bool { v = s.session(a); return v.Result != "pending" })
	if v.Result != "verified" || v.Status != "VERIFIED" || len(v.Events) != 1 {
		t.Fatalf("after completion: %+v", v)
	}
	if s.calls()["regula api/sessions/{id} api_key"] < 1 {
		t.Fatalf("no results API call with the API key: %v", s.calls())
	}
	// A second completion changes nothing.
	completeForm(t, sa.URL, "fail")
	if status, _, body := testcaddy.Do(t, http.DefaultClient, "GET", sa.URL, nil); status != http.StatusOK || !strings.Contains(body, "already completed (status VERIFIED)") {
		t.Fatalf("completed page: %d %s", status, body)
	}

	b := testcaddy.Client()
	sb := s.start(b, "GET", "/api/start", "")
	mobile := decodeHandoff(t, sb.URL).Inner.String() + "&redirect=" + url.QueryEscape("https://app.example.com/done")
	if status, hdr, body := completeForm(t, mobile, "fail"); status != http.StatusSeeOther || hdr.Get("Location") != "https://app.example.com/done" {
		t.Fatalf("completing with a redirect: %d %v %s", status, hdr, body)
	}
	eventually(t, "the refresh", func() bool { v = s.session(b); return v.Result != "pending" })
	if v.Result != "failed" || v.Status != "NOT_VERIFIED" {
		t.Fatalf("after a failed verification: %+v", v)
	}
}
