package incode_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestMalformedRequests: each bad request gets the exact status and a JSON
// error naming the problem, and no stored session changes.
func TestMalformedRequests(t *testing.T) {
	e := start(t, "", admin)
	c := testcaddy.Client()
	_, ob := e.get(c, "/onboarding-url")
	tok := m2s(ob, "token")
	before := testcaddy.Snapshot(t, e.in.Storage)
	if len(before) != 1 {
		t.Fatalf("want one stored session, have %d", len(before))
	}
	hook := []string{"X-Webhook-Secret", "hook-secret"}
	upper := strings.ToUpper(m2s(ob, "uniqueId"))
	cases := []struct {
		method, path, body string
		hdr                []string
		status             int
		msg                string
	}{
		{"GET", "/start?uniqueId=", "", nil, 400, "uniqueId is not a valid UUID"},
		{"GET", "/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"},
		{"GET", "/start?uniqueId=../../etc/passwd", "", nil, 400, "uniqueId is not a valid UUID"},
		{"GET", "/start?uniqueId=%2e%2e%2f%2e%2e%2fsessions", "", nil, 400, "uniqueId is not a valid UUID"},
		{"GET", "/start?uniqueId=" + upper, "", nil, 400, "uniqueId is not a valid UUID"},
		{"GET", "/start?uniqueId=6ba7b810-9dad-11d1-80b4-00c04fd430c8", "", nil, 400, "uniqueId is not a valid UUID"}, // v1
		{"GET", "/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"},
		{"GET", "/start?redirectionUrl=ftp://x/y", "", nil, 400, "redirectionUrl must be an absolute http or https URL"},
		{"GET", "/start?redirectionUrl=https://evil.example/", "", nil, 400, "redirectionUrl origin https://evil.example is not allowed"},
		{"GET", "/onboarding-url?new=1&redirectionUrl=%2F%2Fevil.example", "", nil, 400, "redirectionUrl must be an absolute"},
		{"GET", "/start?new=1&externalCustomerId=" + strings.Repeat("x", 300), "", nil, 400, "externalCustomerId is longer than 256 characters"},
		{"GET", "/onboarding-status", "", nil, 400, "interviewId is required"},
		{"GET", "/onboarding-status?interviewId=", "", nil, 400, "interviewId is required"},
		{"GET", "/onboarding-status?interviewId=%20", "", nil, 400, "interviewId is required"},
		{"GET", "/fetch-score?interviewId=x", "", nil, 400, "X-Token header is required"},
		{"GET", "/fetch-score", "", []string{"X-Token", tok}, 400, "interviewId is required"},
		{"POST", "/auth", "", nil, 400, "a JSON body is required"},
		{"POST", "/auth", "not json", nil, 400, "malformed JSON body"},
		{"POST", "/auth", `{"transactionId":`, nil, 400, "malformed JSON body"},
		{"POST", "/auth", `{"transactionId":5,"token":"a","interviewToken":"b"}`, nil, 400, `field "transactionId" must be a string`},
		{"POST", "/auth", `[]`, nil, 400, "the body must be a JSON object"},
		{"POST", "/auth", `{"transactionId":"t","token":"a"}`, nil, 400, "interviewToken is required"},
		{"POST", "/auth", `{"transactionId":"` + strings.Repeat("x", 1<<20) + `"}`, nil, 413, "request body is larger than 1048576 bytes"},
		{"POST", "/auth", `{"transactionId":"t"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type must be application/json"},
		{"POST", "/auth", `{"transactionId":"t"}`, []string{"Content-Type", "text/plain; x=json"}, 415, "Content-Type must be application/json"},
		{"POST", "/finish", `{"token":"t"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json"},
		{"POST", "/finish", `{}`, nil, 400, "token is required"},
		{"POST", "/finish", `{"token":""}`, nil, 400, "token is required"},
		{"POST", "/finish", `{"token":null}`, nil, 400, "token is required"},
		{"POST", "/finish", `{"token":["a"]}`, nil, 400, `field "token" must be a string`},
		{"POST", "/webhook", `{}`, hook, 400, "interviewId is required"},
		{"POST", "/webhook", `{"interviewId":1,"onboardingStatus":"X"}`, hook, 400, "interviewId and onboardingStatus must be strings"},
		{"POST", "/webhook", `{"interviewId":"x"}`, hook, 400, "onboardingStatus is required"},
		{"POST", "/webhook", `{"interviewId":`, hook, 400, "malformed JSON body"},
		{"POST", "/approve", `{}`, hook, 400, "interviewId is required"},
		{"PUT", "/start", "", nil, 405, "method PUT is not allowed on /api/start"},
		{"POST", "/onboarding-url", `{}`, nil, 405, "method POST is not allowed on /api/onboarding-url"},
		{"GET", "/auth", "", nil, 405, "method GET is not allowed on /api/auth"},
		{"GET", "/webhook", "", nil, 405, "method GET is not allowed on /api/webhook"},
		{"DELETE", "/session", "", nil, 405, "method DELETE is not allowed on /api/session"},
		{"GET", "/unknown", "", nil, 404, "unknown route /api/unknown"},
		{"GET", "/", "", nil, 404, "unknown route /api/"},
		{"GET", "", "", nil, 404, "unknown route /api"},
		{"GET", "/session", "", nil, 401, "no session: call /api/start first"},
		{"GET", "/0/omni/get/score", "", nil, 401, "no session token"},
		{"GET", "/omni/%2e%2e/x", "", []string{"X-Incode-Hardware-Id", tok}, 400, "path is not allowed"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		var status int
		var hdr http.Header
		var body string
		if tc.body == "" {
			status, hdr, body = testcaddy.Do(t, testcaddy.Client(), tc.method, e.api(tc.path), nil, tc.hdr...)
		} else {
			status, hdr, body = testcaddy.Do(t, testcaddy.Client(), tc.method, e.api(tc.path), strings.NewReader(tc.body), tc.hdr...)
		}
		m := testcaddy.JSON(t, body)
		if status != tc.status || m["success"] != false || !strings.Contains(m2s(m, "error"), tc.msg) {
			t.Errorf("%s %.60s %.40s: %d %v, want %d and %q", tc.method, tc.path, tc.body, status, m, tc.status, tc.msg)
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
	}
	testcaddy.SameSnapshot(t, before, testcaddy.Snapshot(t, e.in.Storage))
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("bad requests created provider sessions: %d starts", n)
	}
}
