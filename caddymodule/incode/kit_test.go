package incode_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestOnboardingURLCompletesAStartedSession: a session /start began gets
// its onboarding URL on the first onboarding-url call, from the cookie or
// by uniqueId, once: the URL is kept with the session.
func TestOnboardingURLCompletesAStartedSession(t *testing.T) {
	e := start(t, "", "")
	c := testcaddy.Client()
	_, st := e.get(c, "/start")
	status, ob := e.get(c, "/onboarding-url")
	wantStatus(t, status, ob, 200)
	if ob["uniqueId"] != st["uniqueId"] || ob["token"] != st["token"] || m2s(ob, "url") == "" || m2s(ob, "interviewId") == "" {
		t.Fatalf("onboarding-url after /start: %v, started %v", ob, st)
	}
	status, again := e.get(testcaddy.Client(), "/onboarding-url-without-api-key?uniqueId="+url.QueryEscape(m2s(st, "uniqueId")))
	wantStatus(t, status, again, 200)
	if again["url"] != ob["url"] || again["uniqueId"] != st["uniqueId"] {
		t.Fatalf("resumed by uniqueId: %v, want %v", again, ob)
	}
	if n := e.calls("omni/start"); n != 1 {
		t.Fatalf("omni/start calls = %d, want 1", n)
	}
	if n := e.calls("0/omni/onboarding-url"); n != 1 {
		t.Fatalf("onboarding-url calls = %d, want 1 (kept with the session)", n)
	}
}

// TestRefusedStartSpendsNoQuota: Incode's own start fields are checked
// before the client's session quota is spent.
func TestRefusedStartSpendsNoQuota(t *testing.T) {
	e := start(t, "session_quota 2 1h", "")
	for _, bad := range []string{"?customFields=%7B%7D", "?externalCustomerId=" + strings.Repeat("x", 300), "?language=en_US"} {
		status, m := e.get(testcaddy.Client(), "/start"+bad)
		wantStatus(t, status, m, 400)
	}
	for i := range 2 {
		status, m := e.get(testcaddy.Client(), "/start")
		if status != 200 {
			t.Fatalf("start %d after refused ones: %d %v", i, status, m)
		}
	}
	status, m := e.get(testcaddy.Client(), "/start")
	wantError(t, status, m, 429, "too many new sessions")
}
