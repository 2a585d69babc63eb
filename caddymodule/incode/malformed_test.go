package incode_test

import (
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
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/start?uniqueId=", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/start?uniqueId=../../etc/passwd", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/start?uniqueId=%2e%2e%2f%2e%2e%2fsessions", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/start?uniqueId="+upper, "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/start?uniqueId=6ba7b810-9dad-11d1-80b4-00c04fd430c8", "", nil, 400, "uniqueId is not a valid UUID"), // v1
		testcaddy.Case("GET", "/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("GET", "/start?redirectionUrl=ftp://x/y", "", nil, 400, "redirectionUrl must be an absolute http or https URL"),
		testcaddy.Case("GET", "/start?redirectionUrl=https://evil.example/", "", nil, 400, "redirectionUrl origin https://evil.example is not allowed"),
		testcaddy.Case("GET", "/onboarding-url?new=1&redirectionUrl=%2F%2Fevil.example", "", nil, 400, "redirectionUrl must be an absolute"),
		testcaddy.Case("GET", "/start?new=1&externalCustomerId="+strings.Repeat("x", 300), "", nil, 400, "externalCustomerId is longer than 256 characters"),
		testcaddy.Case("GET", "/onboarding-status", "", nil, 400, "interviewId is required"),
		testcaddy.Case("GET", "/onboarding-status?interviewId=", "", nil, 400, "interviewId is required"),
		testcaddy.Case("GET", "/onboarding-status?interviewId=%20", "", nil, 400, "interviewId is required"),
		testcaddy.Case("GET", "/fetch-score?interviewId=x", "", nil, 400, "X-Token header is required"),
		testcaddy.Case("GET", "/fetch-score", "", []string{"X-Token", tok}, 400, "interviewId is required"),
		testcaddy.Case("POST", "/auth", "", nil, 400, "a JSON body is required"),
		testcaddy.Case("POST", "/auth", "not json", nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/auth", `{"transactionId":`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/auth", `{"transactionId":5,"token":"a","interviewToken":"b"}`, nil, 400, `field "transactionId" must be a string`),
		testcaddy.Case("POST", "/auth", `[]`, nil, 400, "the body must be a JSON object"),
		testcaddy.Case("POST", "/auth", `{"transactionId":"t","token":"a"}`, nil, 400, "interviewToken is required"),
		testcaddy.Case("POST", "/auth", `{"transactionId":"`+strings.Repeat("x", 1<<20)+`"}`, nil, 413, "request body is larger than 1048576 bytes"),
		// Any Content-Type is read as JSON (issue 9 point 1); what is not JSON is still refused.
		testcaddy.Case("POST", "/auth", `{"transactionId":"t"}`, []string{"Content-Type", "text/plain;charset=UTF-8"}, 400, "token is required"),
		testcaddy.Case("POST", "/auth", `transactionId=t`, []string{"Content-Type", "text/plain"}, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/finish", `token=t`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "malformed JSON body"),
		// Invalid text: refused naming the field, before any provider call (issue 10 point 10).
		testcaddy.Case("POST", "/auth", "{\"transactionId\":\"t\\u0000\",\"token\":\"a\",\"interviewToken\":\"b\"}", nil, 400, `field "transactionId" contains a NUL character`),
		testcaddy.Case("POST", "/auth", "{\"transactionId\":\"t\",\"token\":\"a\xff\",\"interviewToken\":\"b\"}", nil, 400, `field "token" is not valid UTF-8`),
		testcaddy.Case("POST", "/finish", "{\"token\":\"a\x00b\"}", []string{"Content-Type", "text/plain;charset=UTF-8"}, 400, `contains a NUL character`),
		testcaddy.Case("POST", "/webhook", "{\"interviewId\":\"\xc3\",\"onboardingStatus\":\"X\"}", hook, 400, `field "interviewId" is not valid UTF-8`),
		testcaddy.Case("GET", "/start?new=1&customFields=%7B%7D", "", nil, 400, "allow_custom_fields is off"),
		testcaddy.Case("GET", "/start?new=1&language=en_US", "", nil, 400, "language must be a language tag"),
		testcaddy.Case("POST", "/finish", `{}`, nil, 400, "token is required"),
		testcaddy.Case("POST", "/finish", `{"token":""}`, nil, 400, "token is required"),
		testcaddy.Case("POST", "/finish", `{"token":null}`, nil, 400, "token is required"),
		testcaddy.Case("POST", "/finish", `{"token":["a"]}`, nil, 400, `field "token" must be a string`),
		testcaddy.Case("POST", "/webhook", `{"interviewId":`, hook, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/approve", ``, hook, 400, "a JSON body is required"),
		testcaddy.Case("PUT", "/start", "", nil, 405, "method PUT is not allowed on /api/start"),
		testcaddy.Case("POST", "/onboarding-url", `{}`, nil, 405, "method POST is not allowed on /api/onboarding-url"),
		testcaddy.Case("GET", "/auth", "", nil, 405, "method GET is not allowed on /api/auth"),
		testcaddy.Case("GET", "/webhook", "", nil, 405, "method GET is not allowed on /api/webhook"),
		testcaddy.Case("DELETE", "/session", "", nil, 405, "method DELETE is not allowed on /api/session"),
		testcaddy.Case("GET", "/unknown", "", nil, 404, "unknown route /api/unknown"),
		testcaddy.Case("GET", "/", "", nil, 404, "unknown route /api/"),
		testcaddy.Case("GET", "", "", nil, 404, "unknown route /api"),
		testcaddy.Case("GET", "/session", "", nil, 401, "no session: call /api/start first"),
		testcaddy.Case("GET", "/0/omni/get/score", "", nil, 401, "no session token"),
		testcaddy.Case("GET", "/omni/%2e%2e/x", "", []string{"X-Incode-Hardware-Id", tok}, 400, "path is not allowed"),
	}
	testcaddy.CheckErrors(t, e.api(""), 30, cases)
	testcaddy.SameSnapshot(t, before, testcaddy.Snapshot(t, e.in.Storage))
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("bad requests created provider sessions: %d starts", n)
	}
}
