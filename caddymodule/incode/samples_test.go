package incode_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/incode"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// browserFetch is what a browser sends for fetch(url, {method: "POST",
// body: JSON.stringify(...)}) with no headers: the body is a string, so
// Content-Type is text/plain;charset=UTF-8.
var browserFetch = []string{"Content-Type", "text/plain;charset=UTF-8"}

// TestSampleFrontendsPostTextPlain replays Incode's frontends:
// javascript-samples face-login/main.js posts
// JSON.stringify({token,transactionId: transactionId, interviewToken}) to
// /auth, and onboarding-extended-javascript session.js posts
// JSON.stringify({token}) to /finish, both without headers.
func TestSampleFrontendsPostTextPlain(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/start")
	tok := m2s(ob, "token")
	status, m := e.post(testcaddy.Client(), "/auth", fmt.Sprintf(`{"token":"face","transactionId":"tx1","interviewToken":%q}`, tok), browserFetch...)
	if status != 200 || m["verified"] != true {
		t.Fatalf("/auth as face-login/main.js sends it: %d %v", status, m)
	}
	status, m = e.post(testcaddy.Client(), "/finish", fmt.Sprintf(`{"token":%q}`, tok), browserFetch...)
	if status != 200 {
		t.Fatalf("/finish as session.js sends it: %d %v", status, m)
	}
	// A text/plain POST is a "simple" request any page can send without a
	// preflight: from another site it is refused, before the provider.
	before := e.calls("omni/authentication/verify")
	for _, hdr := range [][]string{
		append([]string{"Origin", "http://evil.example"}, browserFetch...),
		append([]string{"Sec-Fetch-Site", "cross-site"}, browserFetch...),
	} {
		status, m := e.post(testcaddy.Client(), "/auth", fmt.Sprintf(`{"token":"face","transactionId":"tx1","interviewToken":%q}`, tok), hdr...)
		wantError(t, status, m, 403, "cross-site")
		status, m = e.post(testcaddy.Client(), "/finish", fmt.Sprintf(`{"token":%q}`, tok), hdr...)
		wantError(t, status, m, 403, "cross-site")
	}
	if n := e.calls("omni/authentication/verify"); n != before {
		t.Fatalf("a cross-site text/plain POST reached the provider: %d calls, was %d", n, before)
	}
}

// TestAuthWithAPIKeyAlone: without executive credentials, /auth verifies
// with /omni/auth-attempt/verify and the API key, as backend-php
// (sample-server/index.php, auth()) and python-samples
// (sample-server/Session.py, auth_attempt_verify) do.
func TestAuthWithAPIKeyAlone(t *testing.T) {
	e := start(t, "", "")
	_, ob := e.get(testcaddy.Client(), "/start")
	status, m := e.post(testcaddy.Client(), "/auth", fmt.Sprintf(`{"transactionId":"tx1","token":"face","interviewToken":%q}`, m2s(ob, "token")))
	if status != 200 || m["verified"] != true {
		t.Fatalf("auth: %d %v", status, m)
	}
	if n := e.calls("omni/auth-attempt/verify", "api_key"); n != 1 {
		t.Fatalf("auth-attempt/verify calls with the API key alone = %d, want 1", n)
	}
	if n := e.calls("executive/log-in"); n != 0 {
		t.Fatalf("%d executive logins without executive credentials", n)
	}
}

// TestClientIDOptional: backend-nodejs has no client id setting; the
// clientId /omni/start answers with is used for the onboarding URL.
func TestClientIDOptional(t *testing.T) {
	cfg := strings.Replace(site("", ""), "client_id sandbox-client", "", 1)
	e := &env{t: t, in: testcaddy.Start(t, cfg)}
	status, m := e.get(testcaddy.Client(), "/onboarding-url")
	wantStatus(t, status, m, 200)
	if !strings.HasPrefix(m2s(m, "url"), e.sb()+"/incode/flow/") {
		t.Fatalf("onboarding-url: %v", m)
	}
	found := false
	for _, r := range testcaddy.Requests(t, e.sb()) {
		if strings.HasPrefix(r.Path, "/0/omni/onboarding-url") {
			found = true
		}
	}
	if !found {
		t.Fatal("no onboarding-url call")
	}
}

// TestLanguageAndCustomFields: the language option and a well-formed
// ?language= reach /omni/start, as do customFields when allowed (the
// sandbox's hosted page shows both).
func TestLanguageAndCustomFields(t *testing.T) {
	e := start(t, "", "language es-MX\ncountry_code MEX\nallow_custom_fields")
	page := func(query string) string {
		t.Helper()
		status, m := e.get(testcaddy.Client(), "/onboarding-url"+query)
		wantStatus(t, status, m, 200)
		_, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", m2s(m, "url"), nil)
		return body
	}
	if b := page(""); !strings.Contains(b, `lang="es-MX"`) {
		t.Fatalf("the language option did not reach /omni/start: %.300s", b)
	}
	cf := url.QueryEscape(`{"plan":"gold","n":2}`)
	b := page("?language=fr-CA&customFields=" + cf)
	if !strings.Contains(b, `lang="fr-CA"`) || !strings.Contains(b, `id="custom-fields"`) || !strings.Contains(b, "gold") {
		t.Fatalf("?language / customFields did not reach /omni/start: %.600s", b)
	}
	starts := e.calls("omni/start")
	for _, bad := range []string{"?language=" + url.QueryEscape("en US"), "?language=" + url.QueryEscape("<x>"), "?customFields=" + url.QueryEscape(`[1]`),
		"?customFields=" + url.QueryEscape(`{"a":"\u0000"}`), "?customFields=" + url.QueryEscape("{\"a\":\"\xff\"}")} {
		status, m := e.get(testcaddy.Client(), "/onboarding-url"+bad)
		if status != 400 {
			t.Errorf("%s: %d %v, want 400", bad, status, m)
		}
	}
	if n := e.calls("omni/start"); n != starts {
		t.Fatalf("refused requests reached /omni/start: %d, was %d", n, starts)
	}
}

// TestEveryWebhookAcknowledged: Incode retries anything but a 2xx, so every
// authenticated webhook gets one: of an unknown shape, for an unknown
// interview, or a step's status, which is recorded on a known session.
func TestEveryWebhookAcknowledged(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	iid := m2s(ob, "interviewId")
	hook := []string{"X-Webhook-Secret", "hook-secret", "Content-Type", "text/plain"}
	for _, route := range []string{"/webhook", "/approve"} {
		for _, body := range []string{`{}`, `{"interviewId":1,"onboardingStatus":"X"}`, `{"interviewId":"x"}`,
			`{"eventType":"FACE_AUTHENTICATION_SUCCEEDED","customerId":"c1"}`,
			`{"interviewId":"never-stored","onboardingStatus":"ONBOARDING_FINISHED"}`} {
			status, m := e.post(testcaddy.Client(), route, body, hook...)
			if status/100 != 2 {
				t.Errorf("%s %s: %d %v, want 2xx", route, body, status, m)
			}
		}
	}
	for _, body := range []string{
		fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ID_VALIDATION_FINISHED","clientId":"sandbox-client","flowId":"sandbox-flow"}`, iid),
		fmt.Sprintf(`{"interviewId":%q,"eventType":"SESSION_PENDING_REVIEW"}`, iid),
	} {
		status, m := e.post(testcaddy.Client(), "/webhook", body, hook...)
		wantStatus(t, status, m, 200)
	}
	s := e.waitSession(c, func(m map[string]any) bool { return m["status"] == "SESSION_PENDING_REVIEW" })
	evs, _ := s["events"].([]any)
	if len(evs) != 2 || s["result"] != "pending" {
		t.Fatalf("step webhooks not recorded as events: %v", s)
	}
}

// TestWarnScore: a WARN score is result review by default, or what
// warn_result says.
func TestWarnScore(t *testing.T) {
	for _, tc := range []struct{ opt, want string }{{"", "review"}, {"warn_result failed", "failed"}} {
		e := start(t, "", admin+"\n"+tc.opt)
		c := testcaddy.Client()
		_, ob := e.get(c, "/onboarding-url")
		finishHosted(t, m2s(ob, "url"), "warn")
		s := e.waitSession(c, func(m map[string]any) bool { return m["result"] != "pending" })
		if s["result"] != tc.want || s["score"] != "WARN" {
			t.Fatalf("%q: session %v, want result %s", tc.opt, s, tc.want)
		}
	}
}

// TestRefresherWithoutWebhooks: with no webhook reaching the sidecar, GET
// /api/session reads the status and score with the executive token and
// the session still reaches its result.
func TestRefresherWithoutWebhooks(t *testing.T) {
	cfg := strings.Replace(site("", admin), "webhook_url http://127.0.0.1:@@site@@/api/webhook", "webhook_url http://127.0.0.1:1/nowhere", 1)
	e := &env{t: t, in: testcaddy.Start(t, cfg)}
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	if _, m := e.get(c, "/session"); m["result"] != "pending" {
		t.Fatalf("before finishing: %v", m)
	}
	finishHosted(t, m2s(ob, "url"), "pass")
	s := e.waitSession(c, func(m map[string]any) bool { return m["result"] != "pending" })
	if s["result"] != "verified" || s["score"] != "OK" || s["status"] != "ONBOARDING_FINISHED" {
		t.Fatalf("refreshed session: %v", s)
	}
}

// TestApproveOnce: five concurrent deliveries of the same /approve approve
// once; a /webhook delivery of the same notification does not stop it; a
// failed approval is released so the retry approves.
func TestApproveOnce(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	iid := m2s(ob, "interviewId")
	finishHosted(t, m2s(ob, "url"), "pass")
	e.waitSession(c, func(m map[string]any) bool { return m["result"] == "verified" }) // /webhook has seen it
	payload := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, iid)
	var wg sync.WaitGroup
	statuses := make([]int, 5)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = testcaddy.Do(t, testcaddy.Client(), "POST", e.api("/approve"), strings.NewReader(payload), "X-Webhook-Secret", "hook-secret")
		}()
	}
	wg.Wait()
	for _, st := range statuses {
		if st != 200 {
			t.Fatalf("concurrent approve deliveries: %v", statuses)
		}
	}
	if n := e.calls("omni/process/approve"); n != 1 {
		t.Fatalf("five concurrent deliveries approved %d times, want 1", n)
	}

	_, ob = e.get(testcaddy.Client(), "/onboarding-url")
	finishHosted(t, m2s(ob, "url"), "pass")
	payload = fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, m2s(ob, "interviewId"))
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/process/approve", "status": 500, "times": 1})
	status, m := e.post(testcaddy.Client(), "/approve", payload, "X-Webhook-Secret", "hook-secret")
	wantError(t, status, m, 502, "upstream answered 500")
	status, m = e.post(testcaddy.Client(), "/approve", payload, "X-Webhook-Secret", "hook-secret")
	if data, _ := m["data"].(map[string]any); status != 200 || m["success"] != true || data["uuid"] == nil {
		t.Fatalf("retry after a failed approval: %d %v", status, m)
	}
	if n := e.calls("omni/process/approve"); n != 3 {
		t.Fatalf("approve calls = %d, want 3 (1 + a failed one + its retry)", n)
	}
}

// TestApproveActsOnceWhenTheOutcomeIsUnknown: an approval whose answer
// never arrived (the connection cut) may have happened: a retried delivery
// does not approve again. The answer never carries Incode's customer token.
func TestApproveActsOnceWhenTheOutcomeIsUnknown(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/onboarding-url")
	finishHosted(t, m2s(ob, "url"), "pass")
	payload := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, m2s(ob, "interviewId"))
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/process/approve", "reset": true, "times": 1})
	if status, m := e.post(testcaddy.Client(), "/approve", payload, "X-Webhook-Secret", "hook-secret"); status < 500 {
		t.Fatalf("cut approval: %d %v", status, m)
	}
	before := e.calls("omni/process/approve")
	status, m := e.post(testcaddy.Client(), "/approve", payload, "X-Webhook-Secret", "hook-secret")
	if status != 200 || m["success"] != true || e.calls("omni/process/approve") != before {
		t.Fatalf("retry after an unknown outcome: %d %v, %d more approve calls", status, m, e.calls("omni/process/approve")-before)
	}

	// A clean approval's answer: Incode's fields, without its token.
	_, ob = e.get(testcaddy.Client(), "/onboarding-url")
	finishHosted(t, m2s(ob, "url"), "pass")
	status, m = e.post(testcaddy.Client(), "/approve", fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, m2s(ob, "interviewId")), "X-Webhook-Secret", "hook-secret")
	if data, _ := m["data"].(map[string]any); status != 200 || data["uuid"] == nil || data["token"] != nil {
		t.Fatalf("approve answer: %d %v", status, m)
	}
}

// TestNoLoginAmplification: a provider 401 for one chosen interview causes
// at most one fresh executive login, however many anonymous requests ask.
func TestNoLoginAmplification(t *testing.T) {
	old := incode.ReloginEvery
	t.Cleanup(func() { incode.ReloginEvery = old }) // after Caddy stops (cleanups run last-in first-out)
	incode.ReloginEvery = time.Hour
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/onboarding-url")
	iid := m2s(ob, "interviewId")
	if s, m := e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid); s != 200 {
		t.Fatal(m)
	}
	testcaddy.Fault(t, e.sb(), map[string]any{"provider": "incode", "op": "omni/get/onboarding/status", "status": 401, "times": 1000})
	for range 30 {
		status, m := e.get(testcaddy.Client(), "/onboarding-status?interviewId="+iid)
		wantStatus(t, status, m, 502)
	}
	if n := e.calls("executive/log-in"); n != 2 {
		t.Fatalf("30 refused calls caused %d executive logins, want 2 (the first and one fresh one)", n)
	}
}

// TestExposeExecutiveTokenWarns: the option that hands out an
// account-wide token is announced at WARN when the handler starts, and
// webhooks for unknown interviews or of unknown shapes at WARN with their
// type (issue 10 point 12, issue 9 point 2).
func TestExposeExecutiveTokenWarns(t *testing.T) {
	in := testcaddy.Start(t, site("", admin+"\nexpose_executive_token"), testcaddy.Options{LogFile: true})
	e := &env{t: t, in: in}
	e.post(testcaddy.Client(), "/webhook", `{"eventType":"FACE_AUTHENTICATION_SUCCEEDED"}`, "X-Webhook-Secret", "hook-secret")
	e.post(testcaddy.Client(), "/webhook", `{"interviewId":"elsewhere","onboardingStatus":"ID_VALIDATION_FINISHED"}`, "X-Webhook-Secret", "hook-secret")
	var sawExpose, sawShape, sawUnknown bool
	for _, line := range strings.Split(in.Logs(), "\n") {
		warn := strings.Contains(line, `"level":"warn"`)
		sawExpose = sawExpose || warn && strings.Contains(line, "expose_executive_token is on")
		sawShape = sawShape || warn && strings.Contains(line, "unknown shape") && strings.Contains(line, `"type":"FACE_AUTHENTICATION_SUCCEEDED"`)
		sawUnknown = sawUnknown || warn && strings.Contains(line, "no stored session") && strings.Contains(line, `"type":"ID_VALIDATION_FINISHED"`)
	}
	if !sawExpose || !sawShape || !sawUnknown {
		t.Fatalf("WARN lines: expose %v, unknown shape %v, unknown interview %v\n%s", sawExpose, sawShape, sawUnknown, in.Logs())
	}
}
