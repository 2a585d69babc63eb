package veriff_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

const (
	apiKey   = "4c1f2a9e-1b7d-4c1e-9a0b-2d4e6f8a0b1c"
	secret   = "sandbox-veriff-secret"
	previous = "previous-veriff-secret"
)

type stackOpts struct {
	noWebhooks bool   // the sandbox sends none: outcomes come from the refresher
	secrets    string // the provider's shared_secret lines; default current and previous
}

type stack struct{ testcaddy.Stack }

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.secrets == "" {
		o.secrets = "shared_secret " + secret + "\n\t\t\tshared_secret " + previous
	}
	return &stack{testcaddy.StartStack(t, "veriff",
		[]string{"api_key " + apiKey, o.secrets, "callback_url https://app.example/done"},
		[]string{"api_key " + apiKey, "shared_secret " + secret}, !o.noWebhooks)}
}

// choose completes the hosted flow at url with outcome, as a user would.
func (s *stack) choose(flowURL, outcome string) {
	s.T.Helper()
	if st, h, _ := s.ChooseOutcome(flowURL, outcome); st != http.StatusSeeOther || h.Get("Location") != "https://app.example/done" {
		s.T.Fatalf("outcome %s: %d %v", outcome, st, h)
	}
}

func signWith(h func() hash.Hash, key, body string) string { return testcaddy.HMACHex(h, key, body) }

func sig(key, body string) string { return signWith(sha256.New, key, body) }

// TestJourney: start, the hosted page, a resubmission (no result, same URL),
// then an approval delivered by signed webhooks.
func TestJourney(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st, a := s.Do(c, "POST", "/api/start", `{"externalUserId":"user-42","firstName":"Ann"}`)
	if st != 200 || a["uniqueId"] == nil || a["sessionId"] == nil || a["url"] == nil || len(a) != 3 {
		t.Fatalf("start: %d %v", st, a)
	}
	flow := a["url"].(string)
	if !strings.HasPrefix(flow, s.In.URL("sandbox", "/v/")) {
		t.Fatalf("url %s", flow)
	}
	// The alias resumes the browser's session.
	if _, b := s.Do(c, "GET", "/api/onboarding-url", ""); b["uniqueId"] != a["uniqueId"] || b["url"] != flow {
		t.Fatalf("onboarding-url: %v", b)
	}
	calls := testcaddy.Calls(t, s.In.URL("sandbox", ""))
	if calls["veriff v1/sessions api_key"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	s.choose(flow, "resubmission_requested")
	v := s.Await(c, "resubmission_requested", func(v map[string]any) bool { return v["status"] == "resubmission_requested" })
	if v["result"] != "pending" {
		t.Fatalf("after a resubmission request: %v", v)
	}
	s.choose(flow, "approved") // the same URL
	v = s.Await(c, "verified", func(v map[string]any) bool { return v["result"] == "verified" })
	if v["status"] != "approved" {
		t.Fatalf("%v", v)
	}
	logs := s.In.Logs()
	for _, secretish := range []string{secret, previous} {
		if strings.Contains(logs, secretish) {
			t.Fatalf("a secret is in the logs")
		}
	}
}

// TestOutcomes: each decision of the hosted page maps to its result.
func TestOutcomes(t *testing.T) {
	s := startStack(t, stackOpts{})
	for outcome, result := range map[string]string{"declined": "failed", "review": "review", "abandoned": "failed"} {
		c := testcaddy.Client()
		_, a := s.Do(c, "GET", "/api/start", "")
		s.choose(a["url"].(string), outcome)
		v := s.Await(c, result, func(v map[string]any) bool { return v["result"] == result })
		if v["status"] != outcome {
			t.Fatalf("%s: %v", outcome, v)
		}
	}
}

// TestRefresher: without webhooks, GET /api/session reads the decision
// with GET /v1/sessions/{id}/decision, signed with the HMAC of the id (the
// emulator refuses it otherwise, code 1818).
func TestRefresher(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	a := s.CheckRefresher(testcaddy.Client(), func(u string) { s.choose(u, "declined") }, "failed", "declined", "veriff v1/sessions/{id}/decision api_key")
	// The emulator checks the signature as Veriff does.
	id := a["sessionId"].(string)
	dec := s.In.URL("sandbox", "/v1/sessions/"+id+"/decision")
	for _, tc := range []struct {
		hdr  []string
		want int
		code string
	}{
		{[]string{"X-AUTH-CLIENT", apiKey, "X-HMAC-SIGNATURE", sig(secret, id)}, 200, ""},
		{[]string{"X-AUTH-CLIENT", apiKey, "X-HMAC-SIGNATURE", sig("wrong", id)}, 401, "1818"},
		{[]string{"X-AUTH-CLIENT", apiKey}, 401, "1812"},
		{[]string{"X-HMAC-SIGNATURE", sig(secret, id)}, 401, "1801"},
	} {
		st, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", dec, nil, tc.hdr...)
		m := testcaddy.JSON(t, body)
		if st != tc.want || (tc.code != "" && (m["code"] != tc.code || m["status"] != "fail")) {
			t.Errorf("%v: %d %v", tc.hdr, st, m)
		}
	}
}

func decisionBody(id, attempt, status, at string) string {
	return fmt.Sprintf(`{"status":"success","verification":{"id":%q,"attemptId":%q,"status":%q,"code":9001,"decisionTime":%q},"technicalData":{"ip":null}}`, id, attempt, status, at)
}

// TestSignatures: valid, rotated, invalid, missing, wrong algorithm, wrong
// client, replayed; and 403 without a shared secret.
func TestSignatures(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	c := testcaddy.Client()
	_, a := s.Do(c, "GET", "/api/start", "")
	id := a["sessionId"].(string)
	review := decisionBody(id, "a1", "review", "2026-01-01T10:00:00.000Z")
	approved := decisionBody(id, "a1", "approved", "2026-01-01T11:00:00.000Z")
	older := decisionBody(id, "a0", "declined", "2026-01-01T09:00:00.000Z")
	hook := func(body string, hdr ...string) int {
		st, m := s.Do(testcaddy.Client(), "POST", "/api/webhook", body, hdr...)
		if st == 200 && m["success"] != true {
			t.Fatalf("answer %v", m)
		}
		return st
	}
	events := func() int { return s.Events(c) }
	for _, tc := range []struct {
		name string
		body string
		hdr  []string
		want int
	}{
		{"missing", review, nil, 401},
		{"invalid", review, []string{"X-HMAC-SIGNATURE", sig("not-the-secret", review)}, 401},
		{"other body", review, []string{"X-HMAC-SIGNATURE", sig(secret, approved)}, 401},
		{"sha1", review, []string{"X-HMAC-SIGNATURE", signWith(sha1.New, secret, review)}, 401},
		{"not hex", review, []string{"X-HMAC-SIGNATURE", "zz" + sig(secret, review)[2:]}, 401},
		{"wrong client", review, []string{"X-HMAC-SIGNATURE", sig(secret, review), "X-AUTH-CLIENT", "someone-else"}, 401},
	} {
		if st := hook(tc.body, tc.hdr...); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
	if n := events(); n != 0 {
		t.Fatalf("refused deliveries recorded %d events", n)
	}
	// Valid, with the previous secret (rotation), under the VRF- name, in
	// upper-case hex, and with the right client header.
	if st := hook(review, "VRF-HMAC-SIGNATURE", strings.ToUpper(sig(previous, review)), "X-AUTH-CLIENT", apiKey); st != 200 {
		t.Fatalf("rotated secret: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != "review" {
		t.Fatalf("review: %v", v)
	}
	if st := hook(approved, "X-HMAC-SIGNATURE", sig(secret, approved)); st != 200 {
		t.Fatalf("valid: %d", st)
	}
	s.CheckReplayAndOlder(c, func(b string) int { return hook(b, "X-HMAC-SIGNATURE", sig(secret, b)) }, approved, older, "verified", "approved")

	// No shared secret: fail closed.
	s2 := startStack(t, stackOpts{noWebhooks: true, secrets: "# none"})
	s2.CheckFailClosed(review, "X-HMAC-SIGNATURE", sig(secret, review))
}

// TestMalformedRequests: each bad request gets its status and a JSON error
// that names the problem.
func TestMalformedRequests(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	signed := func(body string) []string { return []string{"X-HMAC-SIGNATURE", sig(secret, body)} }
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":5}`, nil, 400, `field "externalUserId" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":"`+strings.Repeat("x", 257)+`"}`, nil, 400, "externalUserId is longer than 256 characters"),
		testcaddy.Case("POST", "/api/start", `externalUserId=a`, []string{"Content-Type", "text/plain"}, 400, "malformed JSON body"),
		// kit routes get the core's query check too: nothing mangled reaches Veriff
		testcaddy.Case("GET", "/api/start?externalUserId=%FF", "", nil, 400, "query parameter externalUserId"),
		testcaddy.Case("POST", "/api/onboarding-url", "", nil, 405, "method POST is not allowed on /api/onboarding-url"),
		testcaddy.Case("POST", "/api/webhook", `{`, signed(`{`), 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/webhook", `[1]`, signed(`[1]`), 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/webhook", `{"verification":{"status":"approved"}}`, signed(`{"verification":{"status":"approved"}}`), 400, "session id is missing or malformed"),
		testcaddy.Case("POST", "/api/webhook", `{"verification":{"id":"../x","status":"approved"}}`, signed(`{"verification":{"id":"../x","status":"approved"}}`), 400, "session id is missing or malformed"),
		testcaddy.Case("POST", "/api/webhook", `{"verification":{"id":"abc","status":"APPROVED!"}}`, signed(`{"verification":{"id":"abc","status":"APPROVED!"}}`), 400, "verification.status is missing or malformed"),
		testcaddy.Case("POST", "/api/webhook", `{"id":"abc","attemptId":"a b","action":"started"}`, signed(`{"id":"abc","attemptId":"a b","action":"started"}`), 400, "attemptId is malformed"),
	}
	s.CheckMalformed(t, "veriff", 15, false, cases)
}

// TestProvisionErrors: a configuration that cannot work does not load.
func TestProvisionErrors(t *testing.T) {
	testcaddy.CheckProvisionErrors(t, "veriff", map[string]string{
		"api_url http://x":                          "api_key is required",
		"api_key k\n\t\t\tapi_url ftp://x":          "api_url must be an http or https URL",
		"api_key k\n\t\t\tcallback_url http://a.b/": "callback_url must be an https URL",
		"api_key k\n\t\t\tapi_key j":                "api_key given twice",
		"api_key k\n\t\t\tshared_secret":            "shared_secret needs a value",
		"api_key k\n\t\t\tnope x":                   `unknown option "nope"`,
	})
}

// TestDefaultSharedSecretOnlyForTheSandbox: a shared secret taken from a
// placeholder's written-in default verifies the sandbox's webhooks only; the
// core refuses it against a Veriff that is not on this machine.
func TestDefaultSharedSecretOnlyForTheSandbox(t *testing.T) {
	os.Unsetenv("IDV_TEST_VERIFF_SECRET")
	conf := func(api string) string {
		return "http://127.0.0.1:@@site@@ {\n\tidv {\n\t\tveriff {\n\t\t\tapi_url " + api +
			"\n\t\t\tapi_key k\n\t\t\tshared_secret {env.IDV_TEST_VERIFF_SECRET:public-sandbox-secret}\n\t\t}\n\t}\n}\n"
	}
	if err := testcaddy.LoadError(t, conf("http://127.0.0.1:9")); err != nil {
		t.Fatalf("the sandbox on loopback was refused: %v", err)
	}
	if err := testcaddy.LoadError(t, conf("https://stationapi.veriff.example")); err == nil || !strings.Contains(err.Error(), "placeholder's default") {
		t.Fatalf("a real Veriff with the default secret: %v, want a refusal", err)
	}
}
