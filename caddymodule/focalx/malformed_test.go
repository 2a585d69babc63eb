package focalx_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestMalformedRequests: each bad request gets the exact status and a JSON
// error naming the problem, and none reaches Focalx.
func TestMalformedRequests(t *testing.T) {
	in := testcaddy.Start(t, site("site", "sbx", nil, "\t\twebhook_auth header X-Webhook-Secret s")+sandboxSite("sbx", "default", nil))
	before := testcaddy.Snapshot(t, in.Storage)
	long := strings.Repeat("a", 250) + "@x.test"
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/token", "", nil, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", ""}, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "   "}, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "\t"}, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-Other-Email", "ann@example.test"}, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", long}, 400, "longer than 254 characters"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann @example.test"}, 400, "spaces or control characters"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann\t@example.test"}, 400, "spaces or control characters"),
		testcaddy.Case("GET", "/api/token?email=ann@example.test", "", nil, 400, "the user's e-mail is missing"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann@example.test", "Origin", "https://evil.example"}, 403, "cross-site requests to /api/token are not allowed"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann@example.test", "Sec-Fetch-Site", "cross-site"}, 403, "cross-site requests to /api/token are not allowed"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann@example.test", "Sec-Fetch-Site", "same-site"}, 403, "cross-site requests to /api/token are not allowed"),
		testcaddy.Case("GET", "/api/token", "", []string{"X-User-Email", "ann@example.test", "Origin", "null"}, 403, "cross-site requests to /api/token are not allowed"),
		testcaddy.Case("POST", "/api/token", "", []string{"X-User-Email", "ann@example.test"}, 405, "method POST is not allowed on /api/token"),
		testcaddy.Case("PUT", "/api/token", "", nil, 405, "method PUT is not allowed on /api/token"),
		testcaddy.Case("DELETE", "/api/token", "", nil, 405, "method DELETE is not allowed on /api/token"),
		testcaddy.Case("PATCH", "/api/token", "", nil, 405, "method PATCH is not allowed on /api/token"),
		testcaddy.Case("GET", "/api/token/", "", nil, 404, "unknown route /api/token/"),
		testcaddy.Case("GET", "/api/Token", "", nil, 404, "unknown route /api/Token"),
		testcaddy.Case("GET", "/api/GetToken", "", nil, 404, "unknown route /api/GetToken"),
		testcaddy.Case("GET", "/api/start", "", nil, 404, "unknown route /api/start"),
		testcaddy.Case("GET", "/api/onboarding-url", "", nil, 404, "unknown route /api/onboarding-url"),
		testcaddy.Case("GET", "/api/webhook", "", nil, 404, "unknown route /api/webhook"),
		testcaddy.Case("GET", "/api/0/omni/get/score", "", nil, 404, "unknown route /api/0/omni/get/score"),
		testcaddy.Case("GET", "/api/idv/sessions", "", nil, 404, "unknown route /api/idv/sessions"),
		testcaddy.Case("GET", "/api/", "", nil, 404, "unknown route /api/"),
		testcaddy.Case("GET", "/api/%2e%2e/token", "", nil, 404, "unknown route /api/../token"),
		testcaddy.Case("GET", "/api/session", "", nil, 401, "no session: call /api/start first"),
		testcaddy.Case("GET", "/api/session", "", []string{"Cookie", "idv_session=../../x"}, 401, "names no live session"),
		testcaddy.Case("GET", "/api/session/events", "", nil, 401, "no session: call /api/start first"),
		testcaddy.Case("POST", "/api/session", "", nil, 405, "method POST is not allowed on /api/session"),
		testcaddy.Case("POST", "/api/webhook/token", "", nil, 404, "webhook_auth oauth2 is not configured"),
	}
	testcaddy.CheckErrors(t, in.URL("site", ""), 30, cases)
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sbx", "")), "GetToken"); n != 0 {
		t.Fatalf("bad requests reached Focalx: %d GetToken calls", n)
	}
	testcaddy.SameSnapshot(t, before, testcaddy.Snapshot(t, in.Storage))
	// And a good request still works afterwards.
	if status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("site", "/api/token"), nil, "X-User-Email", "ann@example.test"); status != http.StatusOK {
		t.Fatalf("good request after the bad ones: %d %s", status, body)
	}
}

// TestTokenFetchesCountAgainstTheQuota: each token fetched from Focalx (a
// new user) counts against the client's session quota; cached answers do
// not.
func TestTokenFetchesCountAgainstTheQuota(t *testing.T) {
	in := testcaddy.Start(t, site("site", "sbx", nil, "\t\tsession_quota 2 1h")+sandboxSite("sbx", "default", nil))
	get := func(email string) (int, http.Header) {
		status, hdr, _ := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("site", "/api/token"), nil, "X-User-Email", email)
		return status, hdr
	}
	for _, email := range []string{"a@x.test", "b@x.test", "a@x.test", "b@x.test"} {
		if status, _ := get(email); status != http.StatusOK {
			t.Fatalf("%s: %d", email, status)
		}
	}
	status, hdr := get("c@x.test")
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("a third new user from one client: %d %v", status, hdr)
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sbx", "")), "GetToken"); n != 2 {
		t.Fatalf("GetToken calls = %d, want 2", n)
	}
}
