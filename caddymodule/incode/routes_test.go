package incode_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// site is the idv handler against the sandbox, with a frontend stand-in.
// extraIDV goes inside the idv block, extraIncode inside its incode block.
func site(extraIDV, extraIncode string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key sandbox-key
			flow_id sandbox-flow
			client_id sandbox-client
			%s
		}
		webhook_auth header X-Webhook-Secret hook-secret
		%s
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key sandbox-key
			flow_id sandbox-flow
			client_id sandbox-client
			admin_email admin@sandbox.test
			admin_password sandbox-password
			webhook_url http://127.0.0.1:@@site@@/api/webhook
			webhook_auth header X-Webhook-Secret hook-secret
			webhook_retry 50ms 2 5
		}
	}
}`, extraIncode, extraIDV)
}

const admin = "admin_email admin@sandbox.test\nadmin_password sandbox-password"

type env struct {
	t  *testing.T
	in *testcaddy.Instance
}

func start(t *testing.T, extraIDV, extraIncode string) *env {
	return &env{t: t, in: testcaddy.Start(t, site(extraIDV, extraIncode))}
}

func (e *env) api(path string) string { return e.in.URL("site", "/api"+path) }
func (e *env) sb() string             { return e.in.URL("sandbox", "") }
func (e *env) calls(parts ...string) int {
	return testcaddy.CountCalls(testcaddy.Calls(e.t, e.sb()), parts...)
}

func (e *env) get(c *http.Client, path string, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	status, _, body := testcaddy.Do(e.t, c, "GET", e.api(path), nil, hdr...)
	return status, testcaddy.JSON(e.t, body)
}

func (e *env) post(c *http.Client, path, body string, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	status, _, b := testcaddy.Do(e.t, c, "POST", e.api(path), strings.NewReader(body), hdr...)
	return status, testcaddy.JSON(e.t, b)
}

func wantStatus(t *testing.T, got int, body map[string]any, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d: %v", got, want, body)
	}
}

func wantError(t *testing.T, got int, body map[string]any, want int, contains string) {
	t.Helper()
	wantStatus(t, got, body, want)
	if body["success"] != false || !strings.Contains(fmt.Sprint(body["error"]), contains) {
		t.Fatalf("error body %v, want success false and an error containing %q", body, contains)
	}
}

func TestStartStoresSessionAndBindsCookie(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	status, hdr, body := testcaddy.Do(t, c, "GET", e.api("/start"), nil)
	m := testcaddy.JSON(t, body)
	wantStatus(t, status, m, 200)
	if len(m) != 2 || m["token"] == "" || m["uniqueId"] == "" {
		t.Fatalf("want exactly token and uniqueId, got %v", m)
	}
	if strings.Contains(body, "interviewId") {
		t.Fatal("the interviewId must stay server-side on /start")
	}
	ck := hdr.Get("Set-Cookie")
	for _, want := range []string{"idv_session=" + m["uniqueId"].(string), "Path=/api", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie is Secure on plain HTTP: %q", ck)
	}
	var matches []string // the session database's records, as files
	for f := range testcaddy.Snapshot(t, e.in.Storage) {
		if filepath.Base(f) == m["uniqueId"].(string)+".json" {
			matches = append(matches, f)
		}
	}
	if len(matches) != 1 {
		t.Fatalf("session not in Caddy storage under %s", e.in.Storage)
	}
	stored, _ := os.ReadFile(matches[0])
	if !strings.Contains(string(stored), `"ref":"`) || !strings.Contains(string(stored), `"expiresAt":"`) {
		t.Fatalf("stored session lacks interviewId or expiry: %s", stored)
	}
	if n := e.calls("omni/start", "api_key"); n != 1 {
		t.Fatalf("omni/start calls with the API key = %d, want 1", n)
	}
}

func TestStartResumesByUniqueID(t *testing.T) {
	e := start(t, "", "")
	_, first := e.get(testcaddy.Client(), "/start")
	id := first["uniqueId"].(string)
	status, again := e.get(testcaddy.Client(), "/start?uniqueId="+id) // another browser, same id
	wantStatus(t, status, again, 200)
	if again["token"] != first["token"] || again["uniqueId"] != id {
		t.Fatalf("resume returned %v, want %v", again, first)
	}
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("resume called upstream: %d omni/start calls", n)
	}
	for _, bad := range []string{"", "not-a-uuid", "../../etc/passwd", "00000000-0000-4000-8000-000000000000", strings.ToUpper(id)} {
		status, m := e.get(testcaddy.Client(), "/start?uniqueId="+url.QueryEscape(bad))
		wantError(t, status, m, 400, "uniqueId")
	}
}

func TestExpiredSessionIsRefused(t *testing.T) {
	e := start(t, "session_ttl 1s", "")
	c := testcaddy.Client()
	_, m := e.get(c, "/start")
	id := m["uniqueId"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := e.get(testcaddy.Client(), "/start?uniqueId="+id)
		if status == 400 {
			wantError(t, status, body, 400, "expired")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session never expired: %d %v", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The cookie's session is expired too: the passthrough has no token.
	status, body := e.get(c, "/0/omni/get/score")
	wantError(t, status, body, 401, "session token")
}

func TestOnboardingURL(t *testing.T) {
	e := start(t, "", "")
	for _, route := range []string{"/onboarding-url", "/onboarding-url-without-api-key"} {
		status, m := e.get(testcaddy.Client(), route)
		wantStatus(t, status, m, 200)
		for _, f := range []string{"token", "interviewId", "uniqueId", "url"} {
			if s, _ := m[f].(string); s == "" {
				t.Fatalf("%s: field %s missing: %v", route, f, m)
			}
		}
		if m["success"] != true || !strings.HasPrefix(m["url"].(string), e.sb()+"/incode/flow/") {
			t.Fatalf("%s: %v", route, m)
		}
	}
	if n := e.calls("0/omni/onboarding-url", "session_token"); n != 2 {
		t.Fatalf("onboarding-url calls with the session token = %d, want 2", n)
	}
	if n := e.calls("0/omni/", "api_key"); n != 0 {
		t.Fatalf("%d /0/ calls carried the API key", n)
	}
}

func TestStartIsIdempotentPerBrowser(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	_, a := e.get(c, "/onboarding-url")
	_, b := e.get(c, "/onboarding-url")
	_, s := e.get(c, "/start")
	if a["uniqueId"] != b["uniqueId"] || a["uniqueId"] != s["uniqueId"] || a["url"] != b["url"] {
		t.Fatalf("same browser got different sessions: %v %v %v", a, b, s)
	}
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("omni/start calls = %d, want 1", n)
	}
	if n := e.calls("onboarding-url"); n != 1 {
		t.Fatalf("a resumed session asked for its URL again: %d", n)
	}
	_, fresh := e.get(c, "/onboarding-url?new=1")
	if fresh["uniqueId"] == a["uniqueId"] {
		t.Fatal("new=1 returned the old session")
	}
	if n := e.calls("omni/start"); n != 2 {
		t.Fatalf("omni/start calls = %d, want 2 after new=1", n)
	}
}

func TestRedirectionURLAllowlist(t *testing.T) {
	e := start(t, "", "")
	own := e.in.URL("site", "/done")
	status, m := e.get(testcaddy.Client(), "/onboarding-url?redirectionUrl="+url.QueryEscape(own))
	wantStatus(t, status, m, 200)
	for _, bad := range []string{"https://evil.example/x", "//evil.example", "javascript:alert(1)", "/relative"} {
		status, m := e.get(testcaddy.Client(), "/start?redirectionUrl="+url.QueryEscape(bad))
		wantError(t, status, m, 400, "redirectionUrl")
	}
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("refused redirects reached the provider: %d starts", n)
	}
	// The hosted flow redirects to the allowed URL when finished.
	status, hdr, _ := testcaddy.Do(t, testcaddy.Client(), "POST", m2s(m, "url"), strings.NewReader("outcome=pass"), "Content-Type", "application/x-www-form-urlencoded")
	if status != http.StatusSeeOther || hdr.Get("Location") != own {
		t.Fatalf("hosted flow: %d Location %q, want 303 to %s", status, hdr.Get("Location"), own)
	}
}

func m2s(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// finishHosted completes the sandbox's hosted flow for an onboarding URL.
func finishHosted(t *testing.T, onboardingURL, outcome string) {
	t.Helper()
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "POST", onboardingURL, strings.NewReader("outcome="+outcome), "Content-Type", "application/x-www-form-urlencoded")
	if status != 200 && status != 303 {
		t.Fatalf("hosted flow: %d %s", status, body)
	}
}

// waitSession polls GET /api/session until cond holds.
func (e *env) waitSession(c *http.Client, cond func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, m := e.get(c, "/session")
		if status == 200 && cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("session never reached the expected state: %d %v", status, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOnboardingStatusAndScore(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	iid := ob["interviewId"].(string)

	status, m := e.get(c, "/onboarding-status")
	wantError(t, status, m, 400, "interviewId")
	status, m = e.get(c, "/onboarding-status?interviewId="+iid)
	wantStatus(t, status, m, 200)
	if m["success"] != true || m["onboardingStatus"] != "UNKNOWN" {
		t.Fatalf("status before finishing: %v", m)
	}

	status, m = e.get(c, "/fetch-score?interviewId="+iid)
	wantError(t, status, m, 400, "X-Token")
	status, m = e.get(c, "/fetch-score", "X-Token", m2s(ob, "token"))
	wantError(t, status, m, 400, "interviewId")

	finishHosted(t, m2s(ob, "url"), "pass")
	status, m = e.get(c, "/onboarding-status?interviewId="+iid)
	if status != 200 || m["onboardingStatus"] != "ONBOARDING_FINISHED" {
		t.Fatalf("status after finishing: %d %v", status, m)
	}
	status, m = e.get(c, "/fetch-score?interviewId="+iid, "X-Token", m2s(ob, "token"))
	if status != 200 || m["success"] != true || m["score"] != "OK" {
		t.Fatalf("score: %d %v", status, m)
	}
	if n := e.calls("0/omni/get/score", "session_token"); n != 1 {
		t.Fatalf("fetch-score must use /0/ with the session token: %d", n)
	}
	if n := e.calls("omni/get/onboarding/status", "api_key+executive_token"); n != 2 {
		t.Fatalf("onboarding status calls with key+executive token = %d, want 2", n)
	}
}

func TestWebhookRecordsOnceAndReadsScore(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	iid := m2s(ob, "interviewId")
	payload := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED","clientId":"sandbox-client","flowId":"sandbox-flow"}`, iid)

	status, m := e.post(testcaddy.Client(), "/webhook", payload)
	wantError(t, status, m, 401, "credentials")
	status, m = e.post(testcaddy.Client(), "/webhook", payload, "X-Webhook-Secret", "wrong")
	wantError(t, status, m, 401, "credentials")

	for i := 0; i < 3; i++ { // a delivery and two retries of it
		status, m = e.post(testcaddy.Client(), "/webhook", payload, "X-Webhook-Secret", "hook-secret")
		wantStatus(t, status, m, 200)
		ts, _ := time.Parse(time.RFC3339, m2s(m, "timestamp"))
		if m["success"] != true || ts.IsZero() || !strings.HasSuffix(m2s(m, "timestamp"), "Z") {
			t.Fatalf("webhook answer: %v", m)
		}
		if d, _ := m["data"].(map[string]any); d["interviewId"] != iid {
			t.Fatalf("webhook data not echoed: %v", m)
		}
	}
	s := e.waitSession(c, func(m map[string]any) bool { return m["status"] == "ONBOARDING_FINISHED" })
	if evs, _ := s["events"].([]any); len(evs) != 1 {
		t.Fatalf("a retried delivery was recorded again: %v", s["events"])
	}
	if s["score"] != "UNKNOWN" || s["result"] != "pending" {
		t.Fatalf("score not recorded as read: %v", s)
	}
	// While the score is UNKNOWN, each delivery reads it again (issue 9
	// point 3: a delivery seen before the score is final must not block a
	// later one), but records nothing new.
	if n := e.calls("omni/get/score", "api_key+executive_token"); n != 3 {
		t.Fatalf("score reads with the executive token = %d, want 3", n)
	}
	// The interview finishes for real: the final score is recorded, and a
	// redelivery after that is deduplicated without reading the score.
	finishHosted(t, m2s(ob, "url"), "pass")
	s = e.waitSession(c, func(m map[string]any) bool { return m["result"] == "verified" })
	if s["score"] != "OK" {
		t.Fatalf("final score: %v", s)
	}
	reads := e.calls("omni/get/score", "api_key+executive_token")
	status, m = e.post(testcaddy.Client(), "/webhook", payload, "X-Webhook-Secret", "hook-secret")
	wantStatus(t, status, m, 200)
	if n := e.calls("omni/get/score", "api_key+executive_token"); n != reads {
		t.Fatalf("a redelivery after the final score read it again: %d reads, was %d", n, reads)
	}
}

func TestHostedFlowWebhookEndToEnd(t *testing.T) {
	e := start(t, "", admin)
	for _, tc := range []struct{ outcome, score, result string }{{"pass", "OK", "verified"}, {"fail", "FAIL", "failed"}} {
		c := testcaddy.Client()
		_, ob := e.get(c, "/onboarding-url")
		finishHosted(t, m2s(ob, "url"), tc.outcome)
		s := e.waitSession(c, func(m map[string]any) bool { return m["result"] != "pending" })
		if s["score"] != tc.score || s["result"] != tc.result || s["status"] != "ONBOARDING_FINISHED" {
			t.Fatalf("%s: session %v", tc.outcome, s)
		}
		if strings.Contains(fmt.Sprint(s), m2s(ob, "token")) {
			t.Fatal("/session leaked the session token")
		}
	}
}

func TestApprove(t *testing.T) {
	e := start(t, "", admin)
	var lastInterview string
	approve := func(outcome string) (int, map[string]any) {
		_, ob := e.get(testcaddy.Client(), "/onboarding-url")
		lastInterview = m2s(ob, "interviewId")
		if outcome != "" {
			finishHosted(t, m2s(ob, "url"), outcome)
		}
		st := "ONBOARDING_FINISHED"
		if outcome == "" {
			st = "ID_VALIDATION_FINISHED"
		}
		return e.post(testcaddy.Client(), "/approve", fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":%q}`, m2s(ob, "interviewId"), st), "X-Webhook-Secret", "hook-secret")
	}
	status, m := approve("pass")
	wantStatus(t, status, m, 200)
	data, _ := m["data"].(map[string]any)
	if m["success"] != true || data["uuid"] == nil || data["success"] != true || m2s(m, "timestamp") == "" {
		t.Fatalf("approve OK: %v", m)
	}
	// A retried delivery is acknowledged without approving again.
	status, m = e.post(testcaddy.Client(), "/approve", fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, lastInterview), "X-Webhook-Secret", "hook-secret")
	if status != 200 || m["success"] != true {
		t.Fatalf("retried approve: %d %v", status, m)
	}
	if n := e.calls("omni/process/approve", "executive_token"); n != 1 {
		t.Fatalf("approve calls = %d, want 1", n)
	}
	status, m = approve("fail")
	if status != 200 || m["success"] != false || !strings.Contains(m2s(m, "error"), "FAIL") {
		t.Fatalf("approve of a FAIL score: %d %v", status, m)
	}
	status, m = approve("")
	if status != 200 || m["success"] != false || !strings.Contains(m2s(m, "error"), "ONBOARDING_FINISHED") {
		t.Fatalf("approve before finishing: %d %v", status, m)
	}
	if n := e.calls("omni/process/approve"); n != 1 {
		t.Fatalf("identities approved that should not be: %d approve calls", n)
	}
}

func TestAuthAndFinish(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/start")
	tok := m2s(ob, "token")

	status, m := e.post(testcaddy.Client(), "/auth", fmt.Sprintf(`{"transactionId":"tx1","token":"face","interviewToken":%q}`, tok))
	wantStatus(t, status, m, 200)
	if m["verified"] != true || m["transactionId"] != "tx1" {
		t.Fatalf("auth: %v", m)
	}
	status, m = e.post(testcaddy.Client(), "/auth", `{"transactionId":"tx1","token":"face"}`)
	wantError(t, status, m, 400, "interviewToken")
	status, m = e.post(testcaddy.Client(), "/auth", `{"transactionId":`)
	wantError(t, status, m, 400, "malformed JSON")
	if n := e.calls("omni/authentication/verify", "api_key+executive_token"); n != 1 {
		t.Fatalf("verify calls with key+executive token = %d", n)
	}

	status, m = e.post(testcaddy.Client(), "/finish", fmt.Sprintf(`{"token":%q}`, tok))
	wantStatus(t, status, m, 200)
	if _, ok := m["redirectionUrl"]; !ok {
		t.Fatalf("finish: %v", m)
	}
	status, m = e.post(testcaddy.Client(), "/finish", `{}`)
	wantError(t, status, m, 400, "token")
	status, m = e.post(testcaddy.Client(), "/finish", `{"token":"not-a-token"}`)
	wantError(t, status, m, 502, "upstream answered 401")
	if n := e.calls("0/omni/finish-status", "session_token"); n != 1 {
		t.Fatalf("finish-status with the session token = %d", n)
	}
}

func TestExecutiveTokenSingleFlightAndExposure(t *testing.T) {
	e := start(t, "", admin)
	status, m := e.get(testcaddy.Client(), "/executive-token")
	wantError(t, status, m, 404, "unknown route")

	e = nil
	e2 := start(t, "", admin+"\nexpose_executive_token")
	var wg sync.WaitGroup
	tokens := make([]string, 20)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", e2.api("/executive-token"), nil)
			var m map[string]any
			_ = jsonUnmarshal(body, &m)
			tokens[i], _ = m["token"].(string)
		}()
	}
	wg.Wait()
	for _, tok := range tokens {
		if tok == "" || tok != tokens[0] {
			t.Fatalf("concurrent callers got different or no tokens: %q vs %q", tok, tokens[0])
		}
	}
	if n := e2.calls("executive/log-in"); n != 1 {
		t.Fatalf("20 concurrent requests caused %d executive logins, want 1", n)
	}
}

func TestExecutiveTokenRefreshedOn401(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/onboarding-url")
	iid := m2s(ob, "interviewId")
	if s, m := e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid); s != 200 {
		t.Fatal(m)
	}
	// The provider now refuses the cached token once (as for a revoked token).
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/get/onboarding/status", "status": 401, "times": 1})
	status, m := e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid)
	wantStatus(t, status, m, 200)
	if n := e.calls("executive/log-in"); n != 2 {
		t.Fatalf("executive logins = %d, want 2 (one fresh login after the 401)", n)
	}
}

func TestExecutiveCacheSurvivesReload(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/onboarding-url")
	iid := m2s(ob, "interviewId")
	e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid)
	if err := e.in.Reload(site("timeout 20s", admin)); err != nil {
		t.Fatal(err)
	}
	status, m := e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid)
	wantStatus(t, status, m, 200)
	if n := e.calls("executive/log-in"); n != 1 {
		t.Fatalf("a reload lost the executive token: %d logins", n)
	}
	// Stored sessions survive it too.
	if s, m := e.get(testcaddy.Client(), "/start?uniqueId="+m2s(ob, "uniqueId")); s != 200 {
		t.Fatalf("session lost across reload: %v", m)
	}
}

func TestPassthroughStreamsWithSessionToken(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	status, m := e.get(c, "/0/omni/get/score")
	wantError(t, status, m, 401, "session token")

	_, ob := e.get(c, "/start")
	big := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB: an ID image
	sum := sha256.Sum256(big)
	for _, p := range []string{"/omni/add/front-id/v2?onlyFront=true", "/0/omni/add/front-id/v2?onlyFront=true"} {
		status, _, body := testcaddy.Do(t, c, "POST", e.api(p), bytes.NewReader(big),
			"X-Api-Key", "client-supplied", "Authorization", "Bearer client", "Content-Type", "application/octet-stream", "X-IDV", "1")
		m := testcaddy.JSON(t, body)
		wantStatus(t, status, m, 200)
		if m["path"] != "/0/omni/add/front-id/v2" || m["query"] != "onlyFront=true" || m["bytes"] != float64(len(big)) || m["sha256"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s forwarded as %v", p, m)
		}
	}
	// The explicit header works without a cookie.
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", e.api("/0/omni/get/score"), nil, "X-Incode-Hardware-Id", m2s(ob, "token"))
	if status != 200 || !strings.Contains(body, `"overall"`) {
		t.Fatalf("passthrough with header: %d %s", status, body)
	}
	for _, r := range testcaddy.Requests(t, e.sb()) {
		if strings.HasPrefix(r.Path, "/0/") && r.APIKey {
			t.Fatalf("a /0/ call carried an API key: %+v", r)
		}
	}
}

func TestUpstreamFailures(t *testing.T) {
	e := start(t, "timeout 1s", "")
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/start", "status": 500, "times": 1})
	status, m := e.get(testcaddy.Client(), "/start")
	wantError(t, status, m, 502, "upstream answered 500")
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("a failed /omni/start was retried: %d calls", n)
	}
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/start", "latency": "3s", "times": 1})
	status, m = e.get(testcaddy.Client(), "/start")
	wantError(t, status, m, 504, "timed out")
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/start", "malformed": true, "times": 1})
	status, m = e.get(testcaddy.Client(), "/start")
	wantError(t, status, m, 502, "malformed")
	if n := e.calls("omni/start"); n != 3 {
		t.Fatalf("omni/start calls = %d, want 3", n)
	}
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/start", "reset": true, "times": 1})
	status, m = e.get(testcaddy.Client(), "/start")
	wantError(t, status, m, 502, "upstream unreachable")
	// Rate limited with a Retry-After longer than worth holding the request:
	// passed on as a 429 with the provider's Retry-After.
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/start", "status": 429, "retry_after": 30, "times": 1})
	status, hdr, body := testcaddy.Do(t, testcaddy.Client(), "GET", e.api("/start"), nil)
	m = testcaddy.JSON(t, body)
	wantError(t, status, m, 429, "rate limiting")
	if hdr.Get("Retry-After") != "30" {
		t.Fatalf("Retry-After %q, want 30", hdr.Get("Retry-After"))
	}
	if n := e.calls("omni/start"); n != 5 {
		t.Fatalf("%d omni/start calls for 5 failed /start requests: a session-creating call was retried", n)
	}
	// And it recovers.
	status, m = e.get(testcaddy.Client(), "/start")
	wantStatus(t, status, m, 200)
	if n := e.calls("omni/start"); n != 6 {
		t.Fatalf("omni/start calls = %d, want 6", n)
	}
}

// TestIdempotentCallsRetried: a GET made with the session token survives a
// reset and honours a short Retry-After, each with exactly one retry.
func TestIdempotentCallsRetried(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	e.get(c, "/start")
	for _, fault := range []map[string]any{
		{"provider": "incode", "op": "0/omni/onboarding-url", "reset": true, "times": 1},
		{"provider": "incode", "op": "0/omni/onboarding-url", "status": 503, "times": 1},
		{"provider": "incode", "op": "0/omni/onboarding-url", "status": 429, "retry_after": 1, "times": 1},
	} {
		testcaddy.Reset(t, e.sb())
		testcaddy.Fault(t, e.sb(), fault)
		status, m := e.get(testcaddy.Client(), "/onboarding-url")
		wantStatus(t, status, m, 200)
		if n := e.calls("0/omni/onboarding-url"); n != 2 {
			t.Fatalf("%v: %d onboarding-url calls, want 2 (one retry)", fault, n)
		}
		if n := e.calls("omni/start"); n != 1 {
			t.Fatalf("%v: %d omni/start calls, want 1", fault, n)
		}
	}
}

func TestRoutingErrors(t *testing.T) {
	e := start(t, "", admin)
	status, m := e.get(testcaddy.Client(), "/nope")
	wantError(t, status, m, 404, "unknown route")
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "DELETE", e.api("/start"), nil)
	wantError(t, status, testcaddy.JSON(t, body), 405, "not allowed")
	huge := `{"transactionId":"` + strings.Repeat("x", 1<<20) + `"}`
	status, m = e.post(testcaddy.Client(), "/auth", huge)
	wantError(t, status, m, 413, "larger than")
	status, m = e.post(testcaddy.Client(), "/finish", `not json`)
	wantError(t, status, m, 400, "malformed JSON")
	// Paths outside the prefix, and look-alikes, reach the next handler.
	for _, p := range []string{"/", "/apiary", "/other/api/start"} {
		status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", e.in.URL("site", p), nil)
		if status != 200 || body != "frontend" {
			t.Fatalf("%s: %d %q, want the frontend", p, status, body)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return jsonDecode([]byte(s), v) }

// TestWebhookCannotForgeTheResult: a payload claiming a manual approval
// does not make a failed verification verified; the result is the score the
// provider gives the executive token.
func TestWebhookCannotForgeTheResult(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	finishHosted(t, m2s(ob, "url"), "fail")
	e.waitSession(c, func(m map[string]any) bool { return m["result"] == "failed" })
	forged := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"MANUAL_REVIEW_APPROVED"}`, m2s(ob, "interviewId"))
	if status, m := e.post(testcaddy.Client(), "/webhook", forged, "X-Webhook-Secret", "hook-secret"); status != 200 {
		t.Fatalf("webhook: %d %v", status, m)
	}
	s := e.waitSession(c, func(m map[string]any) bool { return m["status"] == "MANUAL_REVIEW_APPROVED" })
	if s["result"] != "failed" || s["score"] != "FAIL" {
		t.Fatalf("a payload changed the result: %v", s)
	}
}

// TestOnboardingURLFailureKeepsTheSession: when the onboarding URL cannot
// be had, the session that was started (and billed) is kept and bound, and
// the retry resumes it instead of starting another.
func TestOnboardingURLFailureKeepsTheSession(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "0/omni/onboarding-url", "status": 500, "times": 2})
	status, m := e.get(c, "/onboarding-url")
	wantError(t, status, m, 502, "upstream answered 500")
	status, m = e.get(c, "/onboarding-url")
	wantStatus(t, status, m, 200)
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("the retry started another provider session: %d starts", n)
	}
	if len(testcaddy.Snapshot(t, e.in.Storage)) != 1 {
		t.Fatal("want exactly one stored session")
	}
}
