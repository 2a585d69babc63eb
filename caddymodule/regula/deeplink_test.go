package regula_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// flowStack is a site whose regula block gets sidecar and a sandbox whose
// regula block gets emulator (beside the account's key and workflow).
func flowStack(t *testing.T, sidecar, emulator string) *stack {
	t.Helper()
	t.Setenv("REGULA_TEST_API_KEY", apiKey)
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		regula {
			host        http://127.0.0.1:@@sandbox@@
			api_key     {env.REGULA_TEST_API_KEY}
			workflow_id wf-test
			ttl         1h
`+sidecar+`
		}
		session_quota off
		timeout 10s
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		regula {
			api_key     {env.REGULA_TEST_API_KEY}
			workflow_id wf-test
			max_ttl     2h
`+emulator+`
		}
	}
}`)
	return &stack{t: t, in: in}
}

// startAnswer is /start's answer with mobileUrl.
type startAnswer struct {
	started
	MobileURL string `json:"mobileUrl"`
}

func (s *stack) startFull(c *http.Client) (int, startAnswer, string) {
	s.t.Helper()
	status, _, body := testcaddy.Do(s.t, c, "GET", s.site("/api/start"), nil)
	var a startAnswer
	_ = json.Unmarshal([]byte(body), &a)
	return status, a, body
}

// TestDeeplinkFlow: with flow deeplink, /start makes the one documented
// call (POST /api/v1/deeplink?workflowId= with "ApiKey <key>", from Regula's
// current Token URL page) with a key that holds only deeplink:write and
// session read, and answers the usual shape: url is Regula's url, expiresAt
// its expiresAt, mobileUrl the same /mobile link. The link works on the
// platform, and the outcome reaches the session.
func TestDeeplinkFlow(t *testing.T) {
	s := flowStack(t, "flow deeplink", "api_key_permissions deeplink:write session_all:read\nresults_key_scheme ApiKey")
	c := testcaddy.Client()
	before := time.Now().UTC()
	status, a, body := s.startFull(c)
	after := time.Now().UTC()
	if status != http.StatusOK || a.SessionID == "" || a.UniqueID == "" {
		t.Fatalf("start: %d %s", status, body)
	}
	u, err := url.Parse(a.URL)
	host := fmt.Sprintf("127.0.0.1:%d", s.in.Ports["sandbox"])
	if err != nil || u.Host != host || u.Path != "/mobile" || u.Query().Get("sessionId") != a.SessionID ||
		!strings.HasPrefix(u.Query().Get("authorization"), "Token ey") {
		t.Fatalf("url %q: want Regula's /mobile link with the session's token and id", a.URL)
	}
	if a.MobileURL != a.URL {
		t.Fatalf("mobileUrl %q, want the deeplink url %q", a.MobileURL, a.URL)
	}
	exp, err := time.Parse(time.RFC3339, a.ExpiresAt)
	if err != nil || exp.Before(before.Add(time.Hour-2*time.Second)) || exp.After(after.Add(time.Hour)) {
		t.Fatalf("expiresAt %q is not Regula's expiresAt (about start+1h): %v", a.ExpiresAt, err)
	}
	calls := s.calls()
	if calls["regula api/v1/deeplink api_key"] != 1 || testcaddy.CountCalls(calls, "regula", "api/device/ephemeral") != 0 ||
		testcaddy.CountCalls(calls, "regula", "api/sessions ") != 0 {
		t.Fatalf("calls: %v, want one deeplink call and no ephemeral one", calls)
	}
	// The platform accepts the link, and the refresher reads the outcome
	// with "ApiKey <key>" (the emulator takes no other form here).
	if status, _, body := completeForm(t, a.URL, "pass"); status != http.StatusOK || !strings.Contains(body, `id="done"`) {
		t.Fatalf("completing: %d %s", status, body)
	}
	var v view
	eventually(t, "the refresh", func() bool { v = s.session(c); return v.Result != "pending" })
	if v.Result != "verified" || v.Status != "VERIFIED" {
		t.Fatalf("after completion: %+v", v)
	}
	// Passthrough calls carry the deeplink's token.
	status, _, body = testcaddy.Do(t, c, "GET", s.site("/api/idv/whatever"), nil, "X-IDV", "1")
	if status != http.StatusOK || !strings.Contains(body, `"sessionId":"`+a.SessionID+`"`) {
		t.Fatalf("passthrough: %d %s", status, body)
	}
	// Resumed, the answer is the same.
	status, _, body = testcaddy.Do(t, c, "GET", s.site("/api/start?uniqueId="+a.UniqueID), nil)
	var r startAnswer
	if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.URL != a.URL || r.MobileURL != a.URL {
		t.Fatalf("resume: %d %s", status, body)
	}
}

// TestFlowNeedsItsPermission: a key issued for one flow cannot start the
// other (the emulator refuses the call with 403 in Regula's error shape, and
// /start reports a provider failure without creating a session).
func TestFlowNeedsItsPermission(t *testing.T) {
	for _, tc := range []struct{ name, flow, perms, op string }{
		{"ephemeral flow with a deeplink key", "flow ephemeral", "deeplink:write session_all:read", "regula api/device/ephemeral api_key"},
		{"deeplink flow with an ephemeral key", "flow deeplink", "ephemeral_device:write session_all:read", "regula api/v1/deeplink api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := flowStack(t, tc.flow, "api_key_permissions "+tc.perms)
			status, _, body := s.startFull(testcaddy.Client())
			if status < 500 || strings.Contains(body, "uniqueId") {
				t.Fatalf("start: %d %s, want a provider failure", status, body)
			}
			if s.calls()[tc.op] != 1 {
				t.Fatalf("calls %v: want one %s", s.calls(), tc.op)
			}
			if testcaddy.CountCalls(s.calls(), "regula", "api/sessions ") != 0 {
				t.Fatalf("a session was created: %v", s.calls())
			}
		})
	}
	// The refusal itself, as the platform answers it.
	s := flowStack(t, "", "api_key_permissions ephemeral_device:write")
	status, _, body := testcaddy.Do(t, http.DefaultClient, "POST", s.sandbox("/api/v1/deeplink?workflowId=wf-test"),
		strings.NewReader(`{"metadata":{},"locale":null,"ttl":3600}`), "Authorization", "ApiKey "+apiKey)
	m := testcaddy.JSON(t, body)
	if status != http.StatusForbidden || m["code"] != float64(403) || !strings.Contains(fmt.Sprint(m["message"]), "deeplink:write") {
		t.Fatalf("deeplink without deeplink:write: %d %s", status, body)
	}
}

// TestMobileURLInEphemeralFlow: /start also answers the inner /mobile link
// of the /capture handoff URL, for the SDK's token mode.
func TestMobileURLInEphemeralFlow(t *testing.T) {
	s := flowStack(t, "", "")
	status, a, body := s.startFull(testcaddy.Client())
	if status != http.StatusOK {
		t.Fatalf("start: %d %s", status, body)
	}
	inner := decodeHandoff(t, a.URL).Inner.String()
	if a.MobileURL == "" || a.MobileURL != inner || !strings.Contains(a.MobileURL, "/mobile?authorization=Token%20ey") {
		t.Fatalf("mobileUrl %q, want the inner link %q", a.MobileURL, inner)
	}
}

// TestKeySchemesPerCall: the ephemeral call and the results API each send
// the scheme Regula's pages show for them by default (the key alone, then
// "ApiKey <key>"), and each is set on its own.
func TestKeySchemesPerCall(t *testing.T) {
	for _, tc := range []struct {
		name, sidecar, emulator string
		resultsOK               bool
	}{
		{"defaults", "", "results_key_scheme ApiKey", true},
		{"results none", "results_key_scheme none", "results_key_scheme ApiKey", false},
		{"results none accepted", "results_key_scheme none", "results_key_scheme none", true},
		{"both ApiKey", "api_key_scheme ApiKey", "api_key_scheme ApiKey\nresults_key_scheme ApiKey", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := flowStack(t, tc.sidecar, tc.emulator)
			c := testcaddy.Client()
			status, a, body := s.startFull(c)
			if status != http.StatusOK {
				t.Fatalf("start: %d %s", status, body)
			}
			completeForm(t, a.URL, "pass")
			if !tc.resultsOK {
				status, _, body := testcaddy.Do(t, c, "GET", s.site("/api/session"), nil)
				if v := testcaddy.JSON(t, body); status == http.StatusOK && v["result"] != "pending" {
					t.Fatalf("session: %d %s: the results API took a key in the wrong scheme", status, body)
				}
				if s.calls()["regula api/sessions/{id} invalid"] < 1 {
					t.Fatalf("calls %v: no refused results call", s.calls())
				}
				return
			}
			var v view
			eventually(t, "the refresh", func() bool { v = s.session(c); return v.Result != "pending" })
			if v.Result != "verified" || s.calls()["regula api/sessions/{id} api_key"] < 1 {
				t.Fatalf("session %+v, calls %v", v, s.calls())
			}
		})
	}
}

// TestEmulatorErrorShape: the emulator answers errors, its own and
// injected ones, as {"code", "message"}, not in Incode's shape.
func TestEmulatorErrorShape(t *testing.T) {
	s := flowStack(t, "", "")
	check := func(what string, status int, body string, want int) {
		t.Helper()
		m := testcaddy.JSON(t, body)
		if status != want || m["code"] != float64(want) || fmt.Sprint(m["message"]) == "" || m["timestamp"] != nil || m["path"] != nil {
			t.Fatalf("%s: %d %s, want %d {code, message}", what, status, body, want)
		}
	}
	status, _, body := testcaddy.Do(t, http.DefaultClient, "POST", s.sandbox("/api/device/ephemeral"), strings.NewReader(`{"ttl":60}`))
	check("no key", status, body, http.StatusUnauthorized)
	status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", s.sandbox("/api/v1/deeplink"), strings.NewReader(`{}`), "Authorization", "ApiKey "+apiKey)
	check("no workflowId", status, body, http.StatusBadRequest)
	s.fault(sandbox.Fault{Provider: "regula", Op: "api/v1/deeplink", Status: 503, Times: 1})
	status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", s.sandbox("/api/v1/deeplink?workflowId=wf-test"), strings.NewReader(`{}`), "Authorization", "ApiKey "+apiKey)
	check("injected fault", status, body, http.StatusServiceUnavailable)
	// The deeplink body's fields are all optional, as documented.
	status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", s.sandbox("/api/v1/deeplink?workflowId=wf-test"), nil, "Authorization", "ApiKey "+apiKey)
	m := testcaddy.JSON(t, body)
	if status != http.StatusOK || m["url"] == nil || m["createdAt"] == nil || m["expiresAt"] == nil || fmt.Sprint(m["workflowIds"]) != "[wf-test]" {
		t.Fatalf("deeplink without a body: %d %s", status, body)
	}
}
