package caddymodule_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// cfg is one site with an idv block (extra options inside it) against the
// sandbox.
func cfg(extra string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
		}
		%s
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
		}
	}
}`, extra)
}

func do(t *testing.T, c *http.Client, method, u, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var status int
	var h http.Header
	var b string
	if rd == nil {
		status, h, b = testcaddy.Do(t, c, method, u, nil, hdr...)
	} else {
		status, h, b = testcaddy.Do(t, c, method, u, rd, hdr...)
	}
	if b == "" {
		return status, h, nil
	}
	return status, h, testcaddy.JSON(t, b)
}

func startSession(t *testing.T, in *testcaddy.Instance, c *http.Client) map[string]any {
	t.Helper()
	status, _, m := do(t, c, "GET", in.URL("site", "/api/onboarding-url"), "")
	if status != 200 {
		t.Fatalf("onboarding-url: %d %v", status, m)
	}
	return m
}

func webhookBody(interviewID string) string {
	return fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ID_VALIDATION_FINISHED"}`, interviewID)
}

func TestWebhooksFailClosed(t *testing.T) {
	in := testcaddy.Start(t, cfg(""), testcaddy.Options{LogFile: true})
	status, _, m := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), webhookBody("x"))
	if status != 403 || !strings.Contains(fmt.Sprint(m["error"]), "no webhook_auth") {
		t.Fatalf("webhook with no webhook_auth: %d %v", status, m)
	}
	if status, _, _ := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/approve"), webhookBody("x")); status != 403 {
		t.Fatalf("approve with no webhook_auth: %d", status)
	}
	if !strings.Contains(in.Logs(), "webhook refused: no webhook_auth is configured") {
		t.Fatal("the refusal was not logged with its reason")
	}
}

func TestWebhookAuthMethods(t *testing.T) {
	for _, tc := range []struct {
		name, option string
		ok, bad      []string // headers
	}{
		{"header", "webhook_auth header X-Webhook-Secret s3cret", []string{"X-Webhook-Secret", "s3cret"}, []string{"X-Webhook-Secret", "S3cret"}},
		{"basic", "webhook_auth basic incode pw", []string{"Authorization", "Basic aW5jb2RlOnB3"}, []string{"Authorization", "Basic aW5jb2RlOnB4"}},
		{"none", "webhook_auth none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testcaddy.Start(t, cfg(tc.option))
			ob := startSession(t, in, testcaddy.Client())
			hook := in.URL("site", "/api/webhook")
			if tc.bad != nil {
				for _, hdr := range [][]string{nil, tc.bad} {
					status, _, m := do(t, testcaddy.Client(), "POST", hook, webhookBody(ob["interviewId"].(string)), hdr...)
					if status != 401 || m["success"] != false {
						t.Fatalf("%v: %d %v, want 401", hdr, status, m)
					}
				}
			}
			status, _, m := do(t, testcaddy.Client(), "POST", hook, webhookBody(ob["interviewId"].(string)), tc.ok...)
			if status != 200 || m["success"] != true {
				t.Fatalf("right credentials: %d %v", status, m)
			}
		})
	}
}

func TestWebhookOAuth2(t *testing.T) {
	in := testcaddy.Start(t, cfg("webhook_auth oauth2 incode-client cs"))
	ob := startSession(t, in, testcaddy.Client())
	tokenURL := in.URL("site", "/api/webhook/token")
	form := url.Values{"grant_type": {"client_credentials"}}.Encode()
	ct := "application/x-www-form-urlencoded"
	status, _, m := do(t, testcaddy.Client(), "POST", tokenURL, form, "Content-Type", ct, "Authorization", "Basic aW5jb2RlLWNsaWVudDp3cm9uZw==")
	if status != 401 {
		t.Fatalf("wrong client secret: %d %v", status, m)
	}
	status, _, m = do(t, testcaddy.Client(), "POST", tokenURL, form, "Content-Type", ct, "Authorization", "Basic aW5jb2RlLWNsaWVudDpjcw==")
	tok, _ := m["access_token"].(string)
	if status != 200 || tok == "" || m["expires_in"] != float64(3600) {
		t.Fatalf("token: %d %v", status, m)
	}
	hook := in.URL("site", "/api/webhook")
	for _, bad := range []string{"", "Bearer nope", "Bearer " + tok[:len(tok)-2]} {
		if status, _, _ := do(t, testcaddy.Client(), "POST", hook, webhookBody(ob["interviewId"].(string)), "Authorization", bad); status != 401 {
			t.Fatalf("%q: %d, want 401", bad, status)
		}
	}
	if status, _, m := do(t, testcaddy.Client(), "POST", hook, webhookBody(ob["interviewId"].(string)), "Authorization", "Bearer "+tok); status != 200 {
		t.Fatalf("issued token refused: %d %v", status, m)
	}
}

func TestNoCORSUnlessConfigured(t *testing.T) {
	in := testcaddy.Start(t, cfg(""))
	_, h, _ := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/session"), "", "Origin", "https://app.example.com")
	if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS headers without cors_origins: %v", h)
	}
	in2 := testcaddy.Start(t, cfg("cors_origins https://app.example.com"))
	_, h, _ = do(t, testcaddy.Client(), "GET", in2.URL("site", "/api/session"), "", "Origin", "https://app.example.com")
	if h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin: %v", h)
	}
	status, h, _ := do(t, testcaddy.Client(), "OPTIONS", in2.URL("site", "/api/start"), "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	if status != 204 || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight: %d %v", status, h)
	}
	_, h, _ = do(t, testcaddy.Client(), "GET", in2.URL("site", "/api/session"), "", "Origin", "https://evil.example")
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS headers for an unlisted origin: %v", h)
	}
}

func TestCrossSiteSessionCreationRefused(t *testing.T) {
	in := testcaddy.Start(t, cfg("cors_origins https://app.example.com\nwebhook_auth none"))
	site := in.URL("site", "")
	host := strings.TrimPrefix(site, "http://")
	for _, tc := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"Origin", "https://evil.example"}, 403},
		{[]string{"Sec-Fetch-Site", "cross-site"}, 403},
		{[]string{"Sec-Fetch-Site", "same-site"}, 403},
		{[]string{"Origin", "null"}, 403},
		{[]string{"Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}, 200},
		{[]string{"Origin", "https://app.example.com", "Sec-Fetch-Site", "cross-site"}, 200},
		{[]string{"Sec-Fetch-Site", "none"}, 200}, // typed in the address bar
		{nil, 200}, // not a browser
	} {
		for _, route := range []string{"/api/start?new=1", "/api/onboarding-url?new=1"} {
			status, _, m := do(t, testcaddy.Client(), "GET", site+route, "", tc.hdr...)
			if status != tc.want {
				t.Errorf("%s %v: %d %v, want %d", route, tc.hdr, status, m, tc.want)
			}
		}
	}
	// State-changing routes refuse it too; webhooks (server to server) do not.
	if status, _, _ := do(t, testcaddy.Client(), "POST", site+"/api/finish", `{"token":"x"}`, "Origin", "https://evil.example"); status != 403 {
		t.Errorf("cross-site POST /finish: %d", status)
	}
	if status, _, _ := do(t, testcaddy.Client(), "POST", site+"/api/webhook", webhookBody("x"), "Origin", "https://evil.example"); status != 200 {
		t.Errorf("webhook with an Origin: %d", status)
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "omni/start"); n != 8 {
		t.Errorf("%d sessions created, want 8 (only the allowed requests)", n)
	}
}

func TestSessionQuota(t *testing.T) {
	in := testcaddy.Start(t, cfg("session_quota 2 1h"))
	c := testcaddy.Client()
	startSession(t, in, c)
	startSession(t, in, c) // resumed from the cookie: not a new session, not counted
	do(t, c, "GET", in.URL("site", "/api/start?new=1"), "")
	status, h, m := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), "")
	if status != 429 || h.Get("Retry-After") == "" || !strings.Contains(fmt.Sprint(m["error"]), "at most 2 per 1h") {
		t.Fatalf("over quota: %d %v %v", status, h, m)
	}
	// Resuming still works for a client over its quota.
	status, _, _ = do(t, c, "GET", in.URL("site", "/api/start"), "")
	if status != 200 {
		t.Fatalf("resume over quota: %d", status)
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "omni/start"); n != 2 {
		t.Fatalf("%d provider sessions, want 2", n)
	}

	in = testcaddy.Start(t, cfg("session_quota off"))
	for i := 0; i < 15; i++ {
		if status, _, m := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), ""); status != 200 {
			t.Fatalf("quota off, start %d: %d %v", i, status, m)
		}
	}
}

func TestSessionStatusAndEventStream(t *testing.T) {
	old := caddymodule.EventPoll
	caddymodule.EventPoll = time.Hour // only the push path can deliver in time
	// Registered before Caddy starts, so it runs after Caddy has stopped.
	t.Cleanup(func() { caddymodule.EventPoll = old })
	in := testcaddy.Start(t, cfg("webhook_auth none"))
	c := testcaddy.Client()
	status, _, m := do(t, c, "GET", in.URL("site", "/api/session"), "")
	if status != 401 {
		t.Fatalf("no session: %d %v", status, m)
	}
	ob := startSession(t, in, c)
	status, _, m = do(t, c, "GET", in.URL("site", "/api/session"), "")
	if status != 200 || m["uniqueId"] != ob["uniqueId"] || m["status"] != "STARTED" || m["result"] != "pending" || m["token"] != nil {
		t.Fatalf("session: %d %v", status, m)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", in.URL("site", "/api/session/events"), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
		close(events)
	}()
	if first := <-events; !strings.Contains(first, `"result":"pending"`) {
		t.Fatalf("first event: %s", first)
	}
	do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), webhookBody(ob["interviewId"].(string)))
	select {
	case ev := <-events:
		if !strings.Contains(ev, `"status":"ID_VALIDATION_FINISHED"`) {
			t.Fatalf("event: %s", ev)
		}
	case <-ctx.Done():
		t.Fatal("the webhook's status change never reached the stream")
	}
}

func TestTwoIDVBlocksInOneSite(t *testing.T) {
	two := strings.Replace(cfg("prefix /api/a"), "respond \"frontend\"", `idv {
		prefix /api/b
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key k
			flow_id f
			client_id c
		}
	}
	respond "frontend"`, 1)
	in := testcaddy.Start(t, two)
	c := testcaddy.Client()
	_, ha, a := do(t, c, "GET", in.URL("site", "/api/a/start"), "")
	_, hb, b := do(t, c, "GET", in.URL("site", "/api/b/start"), "")
	if a["uniqueId"] == nil || a["uniqueId"] == b["uniqueId"] {
		t.Fatalf("a %v b %v", a, b)
	}
	if !strings.Contains(ha.Get("Set-Cookie"), "Path=/api/a") || !strings.Contains(hb.Get("Set-Cookie"), "Path=/api/b") {
		t.Fatalf("cookies not scoped to their prefix: %q %q", ha.Get("Set-Cookie"), hb.Get("Set-Cookie"))
	}
	// Each block knows only its own sessions.
	if status, _, _ := do(t, testcaddy.Client(), "GET", in.URL("site", "/api/b/start?uniqueId="+a["uniqueId"].(string)), ""); status != 400 {
		t.Fatalf("block b resumed block a's session: %d", status)
	}
	if status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", "/api/c/start"), nil); status != 200 || body != "frontend" {
		t.Fatalf("outside both prefixes: %d %s", status, body)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"incode {\n flow_id f\n client_id c\n }", "incode: api_key is required"},
		{"incode {\n api_key {env.IDV_TEST_UNSET}\n flow_id f\n client_id c\n }", "incode: api_key is required"},
		{"incode {\n api_key k\n client_id c\n }", "incode: flow_id is required"},
		{"incode {\n api_key k\n flow_id f\n warn_result maybe\n }", "incode: warn_result must be verified, failed or review"}, // client_id is optional (issue 9 point 4)
		{"incode {\n api_key k\n flow_id f\n client_id c\n api_url ftp://x\n }", "api_url must be an http or https URL"},
		{"incode {\n api_key k\n flow_id f\n client_id c\n expose_executive_token\n }", "expose_executive_token needs"},
	} {
		err := loadErr(t, "http://127.0.0.1:@@p@@ {\n idv {\n "+tc.block+"\n }\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.block, err, tc.want)
		}
	}
}

// loadErr loads a config expected to fail provisioning.
func loadErr(t *testing.T, caddyfile string) error {
	t.Helper()
	os.Unsetenv("IDV_TEST_UNSET")
	return testcaddy.LoadError(t, caddyfile)
}
