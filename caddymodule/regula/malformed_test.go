package regula_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestMalformedRequests: each bad request gets the exact status and a JSON
// error naming the problem, no provider call is made for it, and no stored
// session changes.
func TestMalformedRequests(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	before := testcaddy.Snapshot(t, s.in.Storage)
	if len(before) != 1 {
		t.Fatalf("want one stored session, have %d", len(before))
	}
	s.reset()
	hook := []string{"X-Webhook-Secret", "s"}
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/start?uniqueId=", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=..%2F..%2Fsessions", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId="+strings.ToUpper(st.UniqueID), "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("GET", "/api/onboarding-url?uniqueId=zzz", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("POST", "/api/start", `{"uniqueId":"nope"}`, nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("POST", "/api/start", `{"uniqueId":5}`, nil, 400, `field "uniqueId" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":["a"]}`, nil, 400, `field "externalUserId" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/start", `not json`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/start", `[1,2]`, nil, 400, "the body must be a JSON object"),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":"`+strings.Repeat("x", 300)+`"}`, nil, 400, "externalUserId is longer than 256 characters"),
		testcaddy.Case("GET", "/api/start?new=1&externalUserId="+strings.Repeat("y", 257), "", nil, 400, "externalUserId is longer than 256 characters"),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":"`+strings.Repeat("z", 1<<20)+`"}`, nil, 413, "request body is larger than 1048576 bytes"),
		testcaddy.Case("POST", "/api/start", `externalUserId=a`, []string{"Content-Type", "text/plain"}, 400, "malformed JSON body"), // any type is read as JSON (issue 9 point 1)
		testcaddy.Case("PUT", "/api/start", `{}`, nil, 405, "method PUT is not allowed on /api/start"),
		testcaddy.Case("DELETE", "/api/onboarding-url", "", nil, 405, "method DELETE is not allowed on /api/onboarding-url"),
		testcaddy.Case("GET", "/api/webhook", "", nil, 405, "method GET is not allowed on /api/webhook"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":"x","status":2}`, nil, 401, "webhook credentials are missing or wrong"),
		testcaddy.Case("POST", "/api/webhook", `{}`, hook, 400, "sessionId is required"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":7,"status":2}`, hook, 400, "sessionId must be a string and status an integer"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":"x","status":"two"}`, hook, 400, "sessionId must be a string and status an integer"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":"../x"}`, hook, 400, "malformed sessionId"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":"a b\r\nX: y","status":2}`, hook, 400, "malformed sessionId"),
		testcaddy.Case("POST", "/api/webhook", `{"sessionId":`, hook, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/webhook", ``, hook, 400, "a JSON body is required"),
		testcaddy.Case("GET", "/api/idv/sessions", "", nil, 401, "no live regula session"),
		testcaddy.Case("GET", "/api/idv/sessions?uniqueId=bogus", "", nil, 401, "no live regula session"),
		testcaddy.Case("GET", "/api/idv/sessions?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 401, "no live regula session"),
		testcaddy.Case("GET", "/api/idv/%2e%2e/device/ephemeral?uniqueId="+st.UniqueID, "", nil, 400, "path is not allowed"),
		testcaddy.Case("GET", "/api/idv/a%2fb?uniqueId="+st.UniqueID, "", nil, 400, "path is not allowed"),
		testcaddy.Case("GET", "/api/unknown", "", nil, 404, "unknown route /api/unknown"),
		testcaddy.Case("GET", "/api/session", "", nil, 401, "no session: call /api/start first"),
		testcaddy.Case("GET", "/api/session/events", "", nil, 401, "no session: call /api/start first"),
		testcaddy.Case("POST", "/api/webhook/token", "grant_type=client_credentials", []string{"Content-Type", "application/x-www-form-urlencoded"}, 404, "webhook_auth oauth2 is not configured"),
	}
	testcaddy.CheckErrors(t, s.site(""), 30, cases)
	testcaddy.SameSnapshot(t, before, testcaddy.Snapshot(t, s.in.Storage))
	for k, n := range s.calls() {
		if n > 0 && !strings.Contains(k, "api/sessions/{id}") { // a webhook may read a status; nothing else
			t.Errorf("bad requests reached the provider: %s = %d", k, n)
		}
	}
}

// TestPassthroughCannotCreateBillableObjects: a browser holding a session
// cannot use the passthrough to mint ephemeral devices or create sessions,
// which would bypass /start and its quota.
func TestPassthroughCannotCreateBillableObjects(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st := s.start(c, "GET", "/api/start", "")
	s.reset()
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/idv/sessions?workflowId=wf-test"},
		{"PUT", "/api/idv/sessions"},
		{"POST", "/api/idv/device/ephemeral"},
		{"GET", "/api/idv/device/ephemeral"},
		{"POST", "/api/idv/v1/deeplink?workflowId=wf-test"},
		{"POST", "/api/idv/Device/ephemeral"},
	} {
		status, _, body := testcaddy.Do(t, c, tc.method, s.site(tc.path), strings.NewReader(`{"ttl":3600,"metadata":{}}`))
		if status != http.StatusForbidden || !strings.Contains(body, "goes through /api/start") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, status, body)
		}
	}
	if n := len(s.requests()); n != 0 {
		t.Fatalf("%d requests reached Regula", n)
	}
	// Reading the session still works.
	if status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/idv/sessions/"+st.SessionID), nil, "X-IDV", "1"); status != http.StatusOK {
		t.Fatalf("reading the session: %d %s", status, body)
	}
}
