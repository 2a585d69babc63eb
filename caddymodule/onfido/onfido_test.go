package onfido_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

const (
	apiToken   = "api_sandbox.q7Yt2rX9-onfido"
	workflowID = "6f3a2b1c-0d4e-4f5a-8b7c-9d0e1f2a3b4c"
	hookToken  = "sandbox-onfido-webhook-token"
	previous   = "previous-onfido-webhook-token"
)

type stackOpts struct {
	noWebhooks  bool   // the sandbox sends none: outcomes come from the refresher
	noRunToken  bool   // runs carry no sdk_token: the provider mints one
	hookTokens  string // the provider's webhook_token lines; default current and previous
	providerExt string // more provider options
}

type stack struct{ testcaddy.Stack }

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.hookTokens == "" {
		o.hookTokens = "webhook_token " + hookToken + "\n\t\t\twebhook_token " + previous
	}
	runToken := "on"
	if o.noRunToken {
		runToken = "off"
	}
	return &stack{testcaddy.StartStack(t, "onfido",
		[]string{"api_token " + apiToken, "workflow_id " + workflowID, o.hookTokens, o.providerExt},
		[]string{"api_token " + apiToken, "workflow_id " + workflowID, "webhook_token " + hookToken, "run_sdk_token " + runToken},
		!o.noWebhooks)}
}

// choose completes the page at pageURL (the SDK stand-in or the hosted
// link) with outcome, as a user would, and returns the POST's status.
func (s *stack) choose(pageURL, outcome string) int {
	s.T.Helper()
	st, _, _ := s.ChooseOutcome(pageURL, outcome)
	return st
}

func signWith(h func() hash.Hash, key, body string) string { return testcaddy.HMACHex(h, key, body) }

func sig(key, body string) string { return signWith(sha256.New, key, body) }

// claims decodes a JWT's claims (the sandbox's SDK tokens are JWTs).
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestJourney: start (applicant, workflow run with its sdk_token), resume,
// the token route, then the SDK stand-in opened with the token approves and
// a signed webhook delivers the result.
func TestJourney(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st, a := s.Do(c, "POST", "/api/start", `{"externalUserId":"user-42","firstName":"Ann","lastName":"Lee"}`)
	if st != 200 || a["uniqueId"] == nil || a["workflowRunId"] == nil || a["token"] == nil || a["url"] == nil || len(a) != 4 {
		t.Fatalf("start: %d %v", st, a)
	}
	tok := a["token"].(string)
	if claims(t, tok)["workflow_run_id"] != a["workflowRunId"] {
		t.Fatalf("the token is not the run's own: %v", claims(t, tok))
	}
	if link := a["url"].(string); !strings.HasPrefix(link, s.In.URL("sandbox", "/wr/")) {
		t.Fatalf("url %s", link)
	}
	calls := testcaddy.Calls(t, s.In.URL("sandbox", ""))
	if calls["onfido v3.6/applicants api_key"] != 1 || calls["onfido v3.6/workflow_runs api_key"] != 1 || calls["onfido v3.6/sdk_token api_key"] != 0 {
		t.Fatalf("calls %v", calls)
	}
	// The cookie resumes the same session without another applicant.
	if _, b := s.Do(c, "GET", "/api/start", ""); b["uniqueId"] != a["uniqueId"] || b["workflowRunId"] != a["workflowRunId"] {
		t.Fatalf("resume: %v", b)
	}
	// The token route serves the cached run token until shortly before it expires.
	st, tk := s.Do(c, "GET", "/api/token", "")
	if st != 200 || tk["token"] != tok || tk["expiresAt"] == nil || len(tk) != 2 {
		t.Fatalf("token: %d %v", st, tk)
	}
	exp, err := time.Parse(time.RFC3339, tk["expiresAt"].(string))
	if err != nil || int64(claims(t, tok)["exp"].(float64)) != exp.Unix() {
		t.Fatalf("expiresAt %v is not the token's exp %v", tk["expiresAt"], claims(t, tok)["exp"])
	}
	if code := s.choose(s.In.URL("sandbox", "/sdk?token="+url.QueryEscape(tok)), "approved"); code != 200 {
		t.Fatalf("sdk page: %d", code)
	}
	v := s.Await(c, "verified", func(v map[string]any) bool { return v["result"] == "verified" })
	if v["status"] != "approved" {
		t.Fatalf("%v", v)
	}
	if strings.Contains(s.In.Logs(), hookToken) || strings.Contains(s.In.Logs(), apiToken) {
		t.Fatalf("a secret is in the logs")
	}
	for _, answer := range []any{a, tk, v} {
		if b, _ := json.Marshal(answer); strings.Contains(string(b), hookToken) || strings.Contains(string(b), apiToken) {
			t.Fatalf("a secret is in an answer: %s", b)
		}
	}
}

// TestOutcomes: each final status of the hosted link maps to its result,
// and completed_redirect_url sends the user back.
func TestOutcomes(t *testing.T) {
	s := startStack(t, stackOpts{})
	for outcome, result := range map[string]string{"declined": "failed", "review": "review", "abandoned": "failed", "error": "failed"} {
		c := testcaddy.Client()
		_, a := s.Do(c, "GET", "/api/start?redirectionUrl="+url.QueryEscape(s.In.URL("site", "/done")), "")
		if code := s.choose(a["url"].(string), outcome); code != http.StatusSeeOther {
			t.Fatalf("%s: hosted link answered %d, want a redirect", outcome, code)
		}
		v := s.Await(c, result, func(v map[string]any) bool { return v["result"] == result })
		if v["status"] != outcome {
			t.Fatalf("%s: %v", outcome, v)
		}
	}
}

// TestMintedToken: a run without sdk_token gets one from POST /sdk_token,
// with the site's origin + /* as referrer by default.
func TestMintedToken(t *testing.T) {
	s := startStack(t, stackOpts{noRunToken: true, noWebhooks: true})
	_, a := s.Do(testcaddy.Client(), "GET", "/api/start", "")
	c := claims(t, a["token"].(string))
	if c["referrer"] != s.In.URL("site", "/*") || c["workflow_run_id"] != nil || c["applicant_id"] == nil {
		t.Fatalf("claims %v", c)
	}
	if calls := testcaddy.Calls(t, s.In.URL("sandbox", "")); calls["onfido v3.6/sdk_token api_key"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	// A configured referrer wins.
	s2 := startStack(t, stackOpts{noRunToken: true, noWebhooks: true, providerExt: "referrer https://app.example.com/*"})
	_, a = s2.Do(testcaddy.Client(), "GET", "/api/start", "")
	if c := claims(t, a["token"].(string)); c["referrer"] != "https://app.example.com/*" {
		t.Fatalf("claims %v", c)
	}
}

// TestTokenRoute: 401 without a session; after a start whose token call
// failed (the session is kept), concurrent callers share one fresh token.
func TestTokenRoute(t *testing.T) {
	s := startStack(t, stackOpts{noRunToken: true, noWebhooks: true})
	if st, m := s.Do(testcaddy.Client(), "GET", "/api/token", ""); st != 401 || m["success"] != false {
		t.Fatalf("no session: %d %v", st, m)
	}
	sb := s.In.URL("sandbox", "")
	testcaddy.Fault(t, sb, map[string]any{"provider": "onfido", "op": "v3.6/sdk_token", "status": 500, "times": 2}) // the call and its retry
	c := testcaddy.Client()
	st, a := s.Do(c, "GET", "/api/start", "")
	if st != 502 {
		t.Fatalf("start with a failing sdk_token: %d %v", st, a)
	}
	testcaddy.Reset(t, sb)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Go(func() {
			_, _, out := testcaddy.Do(t, c, "GET", s.In.URL("site", "/api/token"), nil)
			var m map[string]string
			_ = json.Unmarshal([]byte(out), &m)
			toks[i] = m["token"]
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if tok == "" || tok != toks[0] {
			t.Fatalf("tokens %q", toks)
		}
	}
	if calls := testcaddy.Calls(t, sb); calls["onfido v3.6/sdk_token api_key"] != 1 || calls["onfido v3.6/applicants api_key"] != 0 {
		t.Fatalf("calls %v", calls)
	}
	// The same session: a retry of /start resumes it.
	_, b := s.Do(c, "GET", "/api/start", "")
	if b["workflowRunId"] == nil || testcaddy.Calls(t, sb)["onfido v3.6/workflow_runs api_key"] != 0 {
		t.Fatalf("resume: %v", b)
	}
}

// TestRefresher: without webhooks, GET /api/session reads the run with
// GET /v3.6/workflow_runs/{id}; the emulator checks the token as Onfido does.
func TestRefresher(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	a := s.CheckRefresher(testcaddy.Client(), func(u string) { s.choose(u, "declined") }, "failed", "declined", "onfido v3.6/workflow_runs/{id} api_key")
	run := s.In.URL("sandbox", "/v3.6/workflow_runs/"+a["workflowRunId"].(string))
	for _, tc := range []struct {
		hdr  []string
		want int
		typ  string
	}{
		{[]string{"Authorization", "Token token=" + apiToken}, 200, ""},
		{[]string{"Authorization", "Token token=wrong"}, 401, "authorization_error"},
		{[]string{"Authorization", "Bearer " + apiToken}, 401, "authorization_error"},
		{nil, 401, "authorization_error"},
	} {
		st, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", run, nil, tc.hdr...)
		m := testcaddy.JSON(t, body)
		if st != tc.want {
			t.Errorf("%v: %d %v", tc.hdr, st, m)
		}
		if tc.typ != "" {
			e, _ := m["error"].(map[string]any)
			if e["type"] != tc.typ || e["message"] == "" || e["fields"] == nil {
				t.Errorf("%v: error body %v", tc.hdr, m)
			}
		} else if m["status"] != "declined" || m["id"] != a["workflowRunId"] {
			t.Errorf("run %v", m)
		}
	}
	// Validation errors carry the field.
	st, _, body := testcaddy.Do(t, testcaddy.Client(), "POST", s.In.URL("sandbox", "/v3.6/applicants"),
		strings.NewReader(`{"first_name":"A<b>"}`), "Authorization", "Token token="+apiToken, "Content-Type", "application/json")
	e, _ := testcaddy.JSON(t, body)["error"].(map[string]any)
	if st != 422 || e["type"] != "validation_error" || e["fields"].(map[string]any)["first_name"] == nil {
		t.Fatalf("validation: %d %s", st, body)
	}
}

func completed(id, status, at string) string {
	return fmt.Sprintf(`{"payload":{"resource_type":"workflow_run","action":"workflow_run.completed","object":{"id":%q,"status":%q,"completed_at_iso8601":%q,"href":"https://api.eu.onfido.com/v3.6/workflow_runs/%s"}}}`, id, status, at, id)
}

// TestSignatures: valid, rotated, invalid, missing, wrong algorithm,
// replayed, older; and 403 without a webhook token.
func TestSignatures(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	c := testcaddy.Client()
	_, a := s.Do(c, "GET", "/api/start", "")
	id := a["workflowRunId"].(string)
	review := completed(id, "review", "2026-01-01T10:00:00Z")
	approved := completed(id, "approved", "2026-01-01T11:00:00Z")
	older := completed(id, "declined", "2026-01-01T09:00:00Z")
	hook := func(body string, hdr ...string) int {
		st, m := s.Do(testcaddy.Client(), "POST", "/api/webhook", body, hdr...)
		if st == 200 && m["success"] != true {
			t.Fatalf("answer %v", m)
		}
		return st
	}
	events := func() int { return s.Events(c) }
	n0 := events() // the refresher's progress event (awaiting_input)
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"missing", nil},
		{"invalid", []string{"X-SHA2-Signature", sig("not-the-token", review)}},
		{"other body", []string{"X-SHA2-Signature", sig(hookToken, approved)}},
		{"sha1", []string{"X-SHA2-Signature", signWith(sha1.New, hookToken, review)}},
		{"sha1 under the old header", []string{"X-Signature", signWith(sha1.New, hookToken, review)}},
		{"not hex", []string{"X-SHA2-Signature", "zz" + sig(hookToken, review)[2:]}},
	} {
		if st := hook(review, tc.hdr...); st != 401 {
			t.Errorf("%s: %d, want 401", tc.name, st)
		}
	}
	if n := events(); n != n0 {
		t.Fatalf("refused deliveries recorded %d events", n-n0)
	}
	// Valid with the previous token (rotation), in upper-case hex.
	if st := hook(review, "X-SHA2-Signature", strings.ToUpper(sig(previous, review))); st != 200 {
		t.Fatalf("rotated token: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != "review" {
		t.Fatalf("review: %v", v)
	}
	if st := hook(approved, "X-SHA2-Signature", sig(hookToken, approved)); st != 200 {
		t.Fatalf("valid: %d", st)
	}
	n := events()
	s.CheckReplayAndOlder(c, func(b string) int { return hook(b, "X-SHA2-Signature", sig(hookToken, b)) }, approved, older, "verified", "approved")
	// Other resources are acknowledged and change nothing.
	check := `{"payload":{"resource_type":"check","action":"check.completed","object":{"id":"check-123","status":"complete","completed_at_iso8601":"2026-01-01T12:00:00Z","href":"https://api.onfido.com/v3/checks/check-123"}}}`
	if st := hook(check, "X-SHA2-Signature", sig(hookToken, check)); st != 200 || events() != n+1 {
		t.Fatalf("check webhook: %d, %d events", st, events())
	}

	// No webhook token: fail closed.
	s2 := startStack(t, stackOpts{noWebhooks: true, hookTokens: "# none"})
	s2.CheckFailClosed(review, "X-SHA2-Signature", sig(hookToken, review))
}

// TestMalformedRequests: each bad request gets its status and a JSON error
// that names the problem, and none reaches Onfido.
func TestMalformedRequests(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	signed := func(body string) []string { return []string{"X-SHA2-Signature", sig(hookToken, body)} }
	hook := func(body string, status int, msg string) testcaddy.ErrorCase {
		return testcaddy.Case("POST", "/api/webhook", body, signed(body), status, msg)
	}
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("POST", "/api/start", `{"firstName":5}`, nil, 400, `field "firstName" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/start", `{"lastName":"`+strings.Repeat("x", 257)+`"}`, nil, 400, "lastName is longer than 256 characters"),
		testcaddy.Case("POST", "/api/start", `{"firstName":"Ann<script>"}`, nil, 400, "firstName must not contain any of"),
		testcaddy.Case("GET", "/api/start?lastName=%7Bx%7D", "", nil, 400, "lastName must not contain any of"),
		testcaddy.Case("GET", "/api/start?redirectionUrl=https://evil.example/", "", nil, 400, "redirectionUrl"),
		testcaddy.Case("POST", "/api/start", `firstName=a`, []string{"Content-Type", "text/plain"}, 400, "malformed JSON body"),
		testcaddy.Case("GET", "/api/start?externalUserId=%FF", "", nil, 400, "query parameter externalUserId"),
		hook(`{`, 400, "malformed JSON body"),
		hook(`[1]`, 400, "malformed JSON body"),
		hook(`{}`, 400, "malformed JSON body"),
		hook(`{"payload":{"action":"workflow_run.completed"}}`, 400, "payload.resource_type and payload.action are required"),
		hook(`{"payload":{"resource_type":"workflow_run","action":"workflow_run.completed"}}`, 400, "payload.object.id is missing or malformed"),
		hook(`{"payload":{"resource_type":"workflow_run","action":"workflow_run.completed","object":{"id":"../x","status":"approved"}}}`, 400, "payload.object.id is missing or malformed"),
		hook(`{"payload":{"resource_type":"workflow_run","action":"workflow_run.completed","object":{"id":"abc","status":"APPROVED!"}}}`, 400, "payload.object.status is missing or malformed"),
	}
	s.CheckMalformed(t, "onfido", 20, true, cases)
}

// TestProvisionErrors: a configuration that cannot work does not load.
func TestProvisionErrors(t *testing.T) {
	wf := "\n\t\t\tworkflow_id " + workflowID
	testcaddy.CheckProvisionErrors(t, "onfido", map[string]string{
		"workflow_id " + workflowID:                    "api_token is required",
		"api_token k":                                  "workflow_id is required",
		"api_token k\n\t\t\tworkflow_id ../x":          "workflow_id is required",
		"api_token k" + wf + "\n\t\t\tapi_url ftp://x": "api_url must be an http or https URL",
		"api_token k\n\t\t\tapi_token j":               "api_token given twice",
		"api_token k\n\t\t\twebhook_token":             "webhook_token needs a value",
		"api_token k\n\t\t\tsdk_token_ttl -1m":         "sdk_token_ttl",
		"api_token k\n\t\t\tnope x":                    `unknown option "nope"`,
	})
}
