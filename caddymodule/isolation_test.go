package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// account is a site with its own Incode account (its own sandbox) under the
// default prefix.
func account(site, sandbox, key string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@%[1]s@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@%[2]s@@
			api_key %[3]s
			flow_id f
			client_id client-%[3]s
			admin_email a@b.c
			admin_password p
			expose_executive_token
		}
		webhook_auth none
	}
	respond "frontend"
}
http://127.0.0.1:@@%[2]s@@ {
	idv_sandbox {
		name %[2]s
		incode {
			api_key %[3]s
			flow_id f
			client_id client-%[3]s
			admin_email a@b.c
			admin_password p
		}
	}
}`, site, sandbox, key)
}

// TestSitesWithDifferentAccountsShareNothing: two sites under the same
// prefix, each with its own provider account, never see each other's
// executive token, sessions or webhooks.
func TestSitesWithDifferentAccountsShareNothing(t *testing.T) {
	in := testcaddy.Start(t, account("a", "sba", "key-a")+account("b", "sbb", "key-b"))
	_, _, ta := do(t, testcaddy.Client(), "GET", in.URL("a", "/api/executive-token"), "")
	_, _, tb := do(t, testcaddy.Client(), "GET", in.URL("b", "/api/executive-token"), "")
	if ta["token"] == nil || ta["token"] == tb["token"] {
		t.Fatalf("site b got site a's executive token: %v %v", ta, tb)
	}
	for _, sb := range []string{"sba", "sbb"} {
		if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL(sb, "")), "executive/log-in"); n != 1 {
			t.Fatalf("%s: %d executive logins, want 1 each", sb, n)
		}
	}
	_, _, sa := do(t, testcaddy.Client(), "GET", in.URL("a", "/api/onboarding-url"), "")
	if status, _, m := do(t, testcaddy.Client(), "GET", in.URL("b", "/api/start?uniqueId="+sa["uniqueId"].(string)), ""); status != 400 {
		t.Fatalf("site b resumed site a's session: %d %v", status, m)
	}
	hook := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ID_VALIDATION_FINISHED"}`, sa["interviewId"])
	do(t, testcaddy.Client(), "POST", in.URL("b", "/api/webhook"), hook)
	ca := testcaddy.Client()
	do(t, ca, "GET", in.URL("a", "/api/start?uniqueId="+sa["uniqueId"].(string)), "", "Sec-Fetch-Site", "same-origin")
	if _, _, m := do(t, ca, "GET", in.URL("a", "/api/session"), ""); m["status"] != "STARTED" {
		t.Fatalf("a webhook to site b changed site a's session: %v", m)
	}
}

// TestResumeLinkDoesNotPlantSession: following a link to
// /start?uniqueId=<someone else's id> does not bind the browser to that
// session; the site's own pages (Fetch Metadata same-origin, or an Origin
// naming the site) still can.
func TestResumeLinkDoesNotPlantSession(t *testing.T) {
	in := testcaddy.Start(t, cfg(""))
	attacker := startSession(t, in, testcaddy.Client())
	link := in.URL("site", "/api/start?uniqueId="+attacker["uniqueId"].(string))
	host := strings.TrimPrefix(in.URL("site", ""), "http://")
	for _, hdr := range [][]string{nil, {"Sec-Fetch-Site", "none"}, {"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
		status, h, _ := do(t, testcaddy.Client(), "GET", link, "", hdr...)
		if (status != 200 && status != 403) || h.Get("Set-Cookie") != "" {
			t.Fatalf("%v: %d Set-Cookie %q: the link planted the session", hdr, status, h.Get("Set-Cookie"))
		}
	}
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://" + host}} {
		if _, h, _ := do(t, testcaddy.Client(), "GET", link, "", hdr...); !strings.Contains(h.Get("Set-Cookie"), attacker["uniqueId"].(string)) {
			t.Fatalf("%v: the site's own page could not resume into a cookie", hdr)
		}
	}
	// A session the request starts is always bound.
	if _, h, _ := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "", "Sec-Fetch-Site", "none"); h.Get("Set-Cookie") == "" {
		t.Fatal("a new session was not bound")
	}
}
