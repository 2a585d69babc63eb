package sumsub_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/sumsub"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

const (
	appToken  = "sbx:uY0CgwELmgUAEyl4hNWxLngb.0WSeQeiYny4WEqmAALEAiK2qTC96fBad"
	secretKey = "sandbox-sumsub-secret-key"
	hookKey   = "sandbox-sumsub-webhook-secret"
	previous  = "previous-sumsub-webhook-secret"
	level     = "basic-kyc-level"
)

type stackOpts struct {
	noWebhooks bool   // the sandbox sends none: outcomes come from the refresher
	hookSecret string // the provider's webhook_secret line; default hookKey
	alg        string // the sandbox's webhook_alg; default HMAC_SHA256_HEX
	extra      string // more lines of the provider's block
}

type stack struct{ testcaddy.Stack }

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	if o.hookSecret == "" {
		o.hookSecret = "webhook_secret " + hookKey + "\n\t\t\twebhook_secret " + previous
	}
	if o.alg == "" {
		o.alg = "HMAC_SHA256_HEX"
	}
	return &stack{testcaddy.StartStack(t, "sumsub",
		[]string{"app_token " + appToken, "secret_key " + secretKey, "level_name " + level, o.hookSecret, o.extra},
		[]string{"app_token " + appToken, "secret_key " + secretKey, "level_name " + level, "webhook_secret " + hookKey, "webhook_alg " + o.alg},
		!o.noWebhooks)}
}

// choose completes the WebSDK stand-in opened with token, as a user would.
func (s *stack) choose(token, outcome string) {
	s.T.Helper()
	if st, _, body := s.ChooseOutcome(s.In.URL("sandbox", "/websdk/"+token), outcome); st != 200 || !strings.Contains(body, outcome) {
		s.T.Fatalf("outcome %s: %d %s", outcome, st, body)
	}
}

func hmacHex(h func() hash.Hash, key, body string) string { return testcaddy.HMACHex(h, key, body) }

// TestJourney: start, the token route (cached: the start's token), the
// WebSDK stand-in, a RETRY (no result, status RETRY), then GREEN, all
// delivered by signed webhooks.
func TestJourney(t *testing.T) {
	s := startStack(t, stackOpts{})
	c := testcaddy.Client()
	st, a := s.Do(c, "POST", "/api/start", `{}`)
	if st != 200 || a["uniqueId"] == nil || a["token"] == nil || a["userId"] != a["uniqueId"] || a["expiresAt"] == nil || len(a) != 4 {
		t.Fatalf("start: %d %v", st, a)
	}
	exp, err := time.Parse(time.RFC3339, a["expiresAt"].(string))
	if err != nil || !exp.After(time.Now().Add(5*time.Minute)) {
		t.Fatalf("expiresAt %v (token_ttl defaults to 10m)", a["expiresAt"])
	}
	tok := a["token"].(string)
	// The start resumes the browser's session; the token route answers
	// the token just minted, from the cache.
	if _, b := s.Do(c, "GET", "/api/start", ""); b["uniqueId"] != a["uniqueId"] || b["token"] != tok {
		t.Fatalf("resume: %v", b)
	}
	if st, v := s.Do(c, "GET", "/api/token", ""); st != 200 || v["token"] != tok || v["expiresAt"] == nil || len(v) != 2 {
		t.Fatalf("token: %d %v", st, v)
	}
	if calls := testcaddy.Calls(t, s.In.URL("sandbox", "")); calls["sumsub resources/accessTokens/sdk api_key"] != 1 {
		t.Fatalf("calls %v", calls)
	}
	// applicantCreated (the first token) arrives as progress.
	s.Await(c, "init", func(v map[string]any) bool { return v["status"] == "init" })
	s.choose(tok, "RETRY")
	v := s.Await(c, "RETRY", func(v map[string]any) bool { return v["status"] == "RETRY" })
	if v["result"] != "pending" {
		t.Fatalf("after RED RETRY: %v", v)
	}
	s.choose(tok, "GREEN") // the resubmission
	v = s.Await(c, "verified", func(v map[string]any) bool { return v["result"] == "verified" })
	if v["status"] != "GREEN" {
		t.Fatalf("%v", v)
	}
	logs := s.In.Logs()
	for _, secretish := range []string{secretKey, hookKey, previous, appToken} {
		if strings.Contains(logs, secretish) {
			t.Fatalf("a secret is in the logs")
		}
	}
}

// TestFinalRejection: RED with FINAL is failed, and the page refuses a
// second submission.
func TestFinalRejection(t *testing.T) {
	for _, alg := range []string{"HMAC_SHA1_HEX", "HMAC_SHA512_HEX"} { // the sandbox signs in each
		s := startStack(t, stackOpts{alg: alg})
		c := testcaddy.Client()
		_, a := s.Do(c, "GET", "/api/start", "")
		s.choose(a["token"].(string), "RED")
		v := s.Await(c, "failed", func(v map[string]any) bool { return v["result"] == "failed" })
		if v["status"] != "RED" {
			t.Fatalf("%s: %v", alg, v)
		}
	}
}

// TestTokenRefresh: GET /api/token mints a new token for the same userId
// once the cached one is inside its margin (token_ttl 1s: always), and
// answers 401 without a session.
func TestTokenRefresh(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true, extra: "token_ttl 1s"})
	if st, v := s.Do(testcaddy.Client(), "GET", "/api/token", ""); st != 401 || v["success"] != false {
		t.Fatalf("no session: %d %v", st, v)
	}
	c := testcaddy.Client()
	_, a := s.Do(c, "GET", "/api/start", "")
	st, v := s.Do(c, "GET", "/api/token", "")
	if st != 200 || v["token"] == a["token"] || v["token"] == "" {
		t.Fatalf("refresh: %d %v (start %v)", st, v, a["token"])
	}
	// Concurrent expiration handlers each get a token.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if st, v := s.Do(c, "GET", "/api/token", ""); st != 200 || v["token"] == nil {
				t.Errorf("concurrent: %d %v", st, v)
			}
		})
	}
	wg.Wait()
	calls := testcaddy.Calls(t, s.In.URL("sandbox", ""))
	if n := calls["sumsub resources/accessTokens/sdk api_key"]; n < 2 {
		t.Fatalf("calls %v", calls)
	}
	// The fresh token opens the WebSDK stand-in for the same applicant.
	s.choose(v["token"].(string), "GREEN")
	s.Await(c, "verified", func(v map[string]any) bool { return v["result"] == "verified" })
}

// TestUserID: user_id from a trusted header becomes the userId (and the
// applicant's externalUserId); without it, or malformed, no token is
// minted; a session (its cookie, its uniqueId, its tokens) serves only its
// own user.
func TestUserID(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true, extra: "user_id {http.request.header.X-User-Id}"})
	if st, v := s.Do(testcaddy.Client(), "GET", "/api/start", ""); st != 401 || !strings.Contains(fmt.Sprint(v["error"]), "no user id") {
		t.Fatalf("no header: %d %v", st, v)
	}
	if st, v := s.Do(testcaddy.Client(), "GET", "/api/start", "", "X-User-Id", "a b/c"); st != 400 || !strings.Contains(fmt.Sprint(v["error"]), "user id must be") {
		t.Fatalf("bad header: %d %v", st, v)
	}
	c := testcaddy.Client()
	st, a := s.Do(c, "GET", "/api/start", "", "X-User-Id", "ann+kyc@example.com")
	if st != 200 || a["userId"] != "ann+kyc@example.com" {
		t.Fatalf("start: %d %v", st, a)
	}
	// The refresher reads that applicant by externalUserId.
	s.choose(a["token"].(string), "RED")
	s.Await(c, "failed", func(v map[string]any) bool { return v["result"] == "failed" && v["status"] == "RED" })
	if calls := testcaddy.Calls(t, s.In.URL("sandbox", "")); testcaddy.CountCalls(calls, "sumsub", "accessTokens") != 1 {
		t.Fatalf("refused starts reached Sumsub: %v", calls)
	}
	// Another user on the same browser (the cookie is Ann's) gets neither
	// Ann's token nor her session: a new one of their own.
	if st, v := s.Do(c, "GET", "/api/token", "", "X-User-Id", "bob"); st != 401 || v["token"] != nil {
		t.Fatalf("bob's token on ann's cookie: %d %v", st, v)
	}
	if st, v := s.Do(c, "GET", "/api/start?uniqueId="+a["uniqueId"].(string), "", "X-User-Id", "bob"); st != 403 || v["token"] != nil {
		t.Fatalf("bob resuming ann's uniqueId: %d %v", st, v)
	}
	st, b := s.Do(c, "GET", "/api/start", "", "X-User-Id", "bob")
	if st != 200 || b["userId"] != "bob" || b["uniqueId"] == a["uniqueId"] || b["token"] == a["token"] {
		t.Fatalf("bob's start: %d %v", st, b)
	}
	// Ann, back on her own id and cookie-less, resumes by uniqueId.
	if st, v := s.Do(testcaddy.Client(), "GET", "/api/start?uniqueId="+a["uniqueId"].(string), "", "X-User-Id", "ann+kyc@example.com"); st != 200 || v["token"] != a["token"] {
		t.Fatalf("ann resuming: %d %v", st, v)
	}
}

// TestRefresher: without webhooks, GET /api/session reads the applicant
// with GET /resources/applicants/-;externalUserId={userId}/one, signed
// (the emulator refuses unsigned reads).
func TestRefresher(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	c := testcaddy.Client()
	_, a := s.Do(c, "GET", "/api/start", "")
	s.Await(c, "init", func(v map[string]any) bool { return v["status"] == "init" && v["result"] == "pending" })
	s.choose(a["token"].(string), "RETRY")
	s.Await(c, "RETRY", func(v map[string]any) bool { return v["status"] == "RETRY" && v["result"] == "pending" })
	s.choose(a["token"].(string), "GREEN")
	s.Await(c, "verified", func(v map[string]any) bool { return v["result"] == "verified" && v["status"] == "GREEN" })
	calls := testcaddy.Calls(t, s.In.URL("sandbox", ""))
	if calls["sumsub resources/applicants/{id}/one api_key"] == 0 {
		t.Fatalf("calls %v", calls)
	}
}

// signedReq calls the emulator as Sumsub's API is called, with ts and the
// signature over what sigOver says (default: the request itself).
func signedReq(t *testing.T, s *stack, method, pathQuery, body string, ts int64, key, sigOver string, hdr ...string) (int, map[string]any) {
	t.Helper()
	tss := strconv.FormatInt(ts, 10)
	if sigOver == "" {
		sigOver = tss + method + pathQuery + body
	}
	h := append([]string{"X-App-Token", appToken, "X-App-Access-Ts", tss, "X-App-Access-Sig", hmacHex(sha256.New, key, sigOver),
		"Content-Type", "application/json"}, hdr...)
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var st int
	var out string
	if rd != nil {
		st, _, out = testcaddy.Do(t, testcaddy.Client(), method, s.In.URL("sandbox", pathQuery), rd, h...)
	} else {
		st, _, out = testcaddy.Do(t, testcaddy.Client(), method, s.In.URL("sandbox", pathQuery), nil, h...)
	}
	return st, testcaddy.JSON(t, out)
}

// TestRequestSigning: the emulator checks the request signature and its
// one-minute window as Sumsub does, answering Sumsub's error body; Sign
// matches the docs' example string.
func TestRequestSigning(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	now := time.Now().Unix()
	body := `{"userId":"u-1","levelName":"` + level + `","ttlInSecs":600}`
	const tokens = "/resources/accessTokens/sdk"
	for _, tc := range []struct {
		name    string
		ts      int64
		key     string
		sigOver string
		want    int
		code    float64
	}{
		{"valid", now, secretKey, "", 200, 0},
		{"stale timestamp", now - 120, secretKey, "", 401, 4002},
		{"future timestamp", now + 120, secretKey, "", 401, 4002},
		{"wrong key", now, "not-the-secret", "", 401, 4003},
		{"body not signed", now, secretKey, strconv.FormatInt(now, 10) + "POST" + tokens, 401, 4003},
		{"lower-case method", now, secretKey, strconv.FormatInt(now, 10) + "post" + tokens + body, 401, 4003},
	} {
		st, m := signedReq(t, s, "POST", tokens, body, tc.ts, tc.key, tc.sigOver)
		if st != tc.want || (tc.want == 200 && m["userId"] != "u-1") ||
			(tc.code != 0 && (m["errorCode"] != tc.code || m["code"] != float64(st) || m["correlationId"] == nil || m["description"] == nil)) {
			t.Errorf("%s: %d %v", tc.name, st, m)
		}
	}
	if st, m := signedReq(t, s, "POST", tokens, body, now, secretKey, ""); st != 200 || m["token"] == nil {
		t.Fatalf("%d %v", st, m)
	}
	// Missing credentials, then a GET whose signature wrongly covers "{}".
	st, _, out := testcaddy.Do(t, testcaddy.Client(), "POST", s.In.URL("sandbox", tokens), strings.NewReader(body))
	if m := testcaddy.JSON(t, out); st != 401 || m["description"] == nil {
		t.Fatalf("unsigned: %d %v", st, m)
	}
	one := "/resources/applicants/-;externalUserId=u-1/one"
	if st, m := signedReq(t, s, "GET", one, "", now, secretKey, strconv.FormatInt(now, 10)+"GET"+one+"{}"); st != 401 || m["errorCode"] != float64(4003) {
		t.Fatalf("GET signed with a body: %d %v", st, m)
	}
	if st, m := signedReq(t, s, "GET", one, "", now, secretKey, ""); st != 200 || m["externalUserId"] != "u-1" || m["id"] == nil {
		t.Fatalf("applicant: %d %v", st, m)
	}
	missing := "/resources/applicants/-;externalUserId=nobody/one"
	if st, m := signedReq(t, s, "GET", missing, "", now, secretKey, ""); st != 404 || m["description"] != "Applicant not found" || m["code"] != float64(404) {
		t.Fatalf("not found: %d %v", st, m)
	}
	// Unknown level (case-sensitive).
	bad := `{"userId":"u-2","levelName":"Basic-KYC-Level","ttlInSecs":600}`
	if st, m := signedReq(t, s, "POST", tokens, bad, now, secretKey, ""); st != 404 || !strings.Contains(fmt.Sprint(m["description"]), "not found") {
		t.Fatalf("level: %d %v", st, m)
	}
	// The docs' example: ts + METHOD + path?query, nothing for an empty body.
	msg := "1607551635POST/resources/accessTokens?userId=cfd20712-24a2-4c7d-9ab0-146f3c142335&levelName=basic-kyc-level&ttlInSecs=600"
	if got := sumsub.Sign([]byte("k"), "1607551635", "post", "/resources/accessTokens?userId=cfd20712-24a2-4c7d-9ab0-146f3c142335&levelName=basic-kyc-level&ttlInSecs=600", nil); got != hmacHex(sha256.New, "k", msg) {
		t.Fatalf("Sign: %s", got)
	}
}

func reviewed(user, corr, answer, reject, at string) string {
	rr := `{"reviewAnswer":"` + answer + `"}`
	if reject != "" {
		rr = `{"reviewAnswer":"` + answer + `","reviewRejectType":"` + reject + `","rejectLabels":["BAD_PHOTO"]}`
	}
	return `{"applicantId":"5cb56e8e0a975a35f333cb83","inspectionId":"5cb56e8e0a975a35f333cb84","correlationId":"` + corr +
		`","externalUserId":"` + user + `","levelName":"basic-kyc-level","type":"applicantReviewed","sandboxMode":true,` +
		`"reviewStatus":"completed","createdAtMs":"` + at + `","reviewResult":` + rr + `}`
}

// TestSignatures: valid (each algorithm, the default when the algorithm
// header is absent, the previous secret of a rotation), invalid, missing,
// wrong algorithm, replayed; 403 without a webhook_secret.
func TestSignatures(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	c := testcaddy.Client()
	_, a := s.Do(c, "GET", "/api/start", "")
	user := a["userId"].(string)
	retry := reviewed(user, "req-1", "RED", "RETRY", "2026-01-01 10:00:00.000")
	green := reviewed(user, "req-2", "GREEN", "", "2026-01-01 11:00:00.000")
	red := reviewed(user, "req-3", "RED", "FINAL", "2026-01-01 12:00:00.000")
	older := reviewed(user, "req-0", "RED", "FINAL", "2026-01-01 09:00:00.000")
	hook := func(body string, hdr ...string) int {
		st, _ := s.Do(testcaddy.Client(), "POST", "/api/webhook", body, hdr...)
		return st
	}
	events := func() int { return s.Events(c) }
	base := events() // the refresher may have read the applicant (init)
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"missing", nil},
		{"missing digest", []string{"X-Payload-Digest-Alg", "HMAC_SHA256_HEX"}},
		{"invalid", []string{"X-Payload-Digest", hmacHex(sha256.New, "not-the-secret", retry), "X-Payload-Digest-Alg", "HMAC_SHA256_HEX"}},
		{"other body", []string{"X-Payload-Digest", hmacHex(sha256.New, hookKey, green), "X-Payload-Digest-Alg", "HMAC_SHA256_HEX"}},
		{"sha1 labelled sha256", []string{"X-Payload-Digest", hmacHex(sha1.New, hookKey, retry), "X-Payload-Digest-Alg", "HMAC_SHA256_HEX"}},
		{"sha512 labelled sha1", []string{"X-Payload-Digest", hmacHex(sha512.New, hookKey, retry), "X-Payload-Digest-Alg", "HMAC_SHA1_HEX"}},
		{"unknown algorithm", []string{"X-Payload-Digest", hmacHex(sha256.New, hookKey, retry), "X-Payload-Digest-Alg", "HMAC_MD5_HEX"}},
		{"sha1 without the header (sha256 assumed)", []string{"X-Payload-Digest", hmacHex(sha1.New, hookKey, retry)}},
		{"not hex", []string{"X-Payload-Digest", "zz" + hmacHex(sha256.New, hookKey, retry)[2:]}},
	} {
		if st := hook(retry, tc.hdr...); st != 401 {
			t.Errorf("%s: %d, want 401", tc.name, st)
		}
	}
	if n := events(); n != base {
		t.Fatalf("refused deliveries recorded %d events", n-base)
	}
	// Each algorithm verifies; upper-case hex, a missing algorithm header
	// (SHA-256) and the previous secret (rotation) too.
	if st := hook(retry, "X-Payload-Digest", hmacHex(sha1.New, previous, retry), "X-Payload-Digest-Alg", "HMAC_SHA1_HEX"); st != 200 {
		t.Fatalf("sha1 with the previous secret: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["status"] != "RETRY" || v["result"] != "pending" {
		t.Fatalf("RETRY: %v", v)
	}
	if st := hook(green, "X-Payload-Digest", strings.ToUpper(hmacHex(sha512.New, hookKey, green)), "X-Payload-Digest-Alg", "HMAC_SHA512_HEX"); st != 200 {
		t.Fatalf("sha512: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != "verified" {
		t.Fatalf("GREEN: %v", v)
	}
	// Replayed and older deliveries are acknowledged and change nothing.
	s.CheckReplayAndOlder(c, func(b string) int { return hook(b, "X-Payload-Digest", hmacHex(sha256.New, hookKey, b)) }, green, older, "verified", "GREEN")
	// A later decision (the person found out later) replaces it.
	if st := hook(red, "X-Payload-Digest", hmacHex(sha256.New, hookKey, red), "X-Payload-Digest-Alg", "HMAC_SHA256_HEX"); st != 200 {
		t.Fatalf("red: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != "failed" || v["status"] != "RED" {
		t.Fatalf("later RED: %v", v)
	}

	// No webhook secret: fail closed.
	s2 := startStack(t, stackOpts{noWebhooks: true, hookSecret: "# none"})
	s2.CheckFailClosed(green, "X-Payload-Digest", hmacHex(sha256.New, hookKey, green))
}

// TestMalformedRequests: each bad request gets its status and a JSON error
// that names the problem.
func TestMalformedRequests(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true})
	signed := func(body string) []string {
		return []string{"X-Payload-Digest", hmacHex(sha256.New, hookKey, body), "X-Payload-Digest-Alg", "HMAC_SHA256_HEX"}
	}
	hook := func(body string, status int, msg string) testcaddy.ErrorCase {
		return testcaddy.Case("POST", "/api/webhook", body, signed(body), status, msg)
	}
	cases := []testcaddy.ErrorCase{
		testcaddy.Case("GET", "/api/start?uniqueId=abc", "", nil, 400, "uniqueId is not a valid UUID"),
		testcaddy.Case("GET", "/api/start?uniqueId=3f1c7a7e-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "", nil, 400, "no session with that uniqueId"),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":5}`, nil, 400, `field "externalUserId" must be a string`),
		testcaddy.Case("POST", "/api/start", `{"externalUserId":`, nil, 400, "malformed JSON body"),
		testcaddy.Case("POST", "/api/start", `firstName=a`, []string{"Content-Type", "text/plain"}, 400, "malformed JSON body"),
		testcaddy.Case("GET", "/api/start?externalUserId=%FF", "", nil, 400, "query parameter externalUserId"),
		hook(`{`, 400, "malformed JSON body"),
		hook(`[1]`, 400, "malformed JSON body"),
		hook(`{"externalUserId":"u"}`, 400, "type is missing or malformed"),
		hook(`{"type":"applicant Reviewed!","externalUserId":"u"}`, 400, "type is missing or malformed"),
		hook(`{"type":"applicantReviewed","applicantId":"../x","externalUserId":"u"}`, 400, "applicantId is malformed"),
		hook(`{"type":"applicantReviewed","correlationId":"c","externalUserId":"a b"}`, 400, "externalUserId is malformed"),
		hook(`{"type":"applicantReviewed","correlationId":"c 1","externalUserId":"u"}`, 400, "correlationId is malformed"),
		hook(`{"type":"applicantReviewed","correlationId":"c","externalUserId":"u"}`, 400, "applicantReviewed without reviewResult"),
		hook(`{"type":"applicantReviewed","correlationId":"c","externalUserId":"u","reviewResult":{"reviewAnswer":"YELLOW"}}`, 400, "reviewAnswer must be GREEN or RED"),
		hook(`{"type":"applicantPending","externalUserId":"u"}`, 400, "correlationId, or applicantId and createdAtMs"),
	}
	s.CheckMalformed(t, "sumsub", 15, true, cases)
	// A webhook for an applicant without externalUserId (made in the
	// dashboard) or of a type not recorded is acknowledged.
	for _, b := range []string{`{"type":"applicantReviewed","applicantId":"abc"}`,
		`{"type":"applicantTagsChanged","correlationId":"c","externalUserId":"u"}`} {
		if st, m := s.Do(testcaddy.Client(), "POST", "/api/webhook", b, signed(b)...); st != 200 || m["success"] != true {
			t.Errorf("%s: %d %v", b, st, m)
		}
	}
}

// TestProvisionErrors: a configuration that cannot work does not load.
func TestProvisionErrors(t *testing.T) {
	full := "app_token t\n\t\t\tsecret_key s\n\t\t\tlevel_name l\n\t\t\t"
	testcaddy.CheckProvisionErrors(t, "sumsub", map[string]string{
		"secret_key s\n\t\t\tlevel_name l":           "app_token is required",
		"app_token t\n\t\t\tlevel_name l":            "secret_key is required",
		"app_token t\n\t\t\tsecret_key s":            "level_name is required",
		full + "api_url ftp://x":                     "api_url must be an http or https URL",
		full + "token_ttl 0s":                        "token_ttl: a positive duration",
		full + "token_ttl 10":                        "token_ttl: a positive duration",
		full + "token_ttl 500ms":                     "token_ttl must be at least 1s",
		full + "app_token j":                         "app_token given twice",
		full + "webhook_secret":                      "webhook_secret needs a value",
		full + "user_id a b":                         "user_id takes one value",
		full + "nope x":                              `unknown option "nope"`,
		"app_token t\n\t\t\tsecret_key s\n\t\t\tx y": `unknown option "x"`,
	})
}

// TestUpstreamErrors: Sumsub's errors reach the browser as the handler's
// own JSON errors, without Sumsub's body, and store no session; a token
// refresh that fails answers the error and the next one succeeds.
func TestUpstreamErrors(t *testing.T) {
	s := startStack(t, stackOpts{noWebhooks: true, extra: "token_ttl 1s"})
	sbx := s.In.URL("sandbox", "")
	const op = "resources/accessTokens/sdk"
	testcaddy.Fault(t, sbx, map[string]any{"provider": "sumsub", "op": op, "status": 401, "times": 1,
		"body": `{"description":"Request signature mismatch","code":401,"correlationId":"req-1","errorCode":4003,"errorName":"app-token-signature mismatch"}`})
	testcaddy.Fault(t, sbx, map[string]any{"provider": "sumsub", "op": op, "status": 429, "retry_after": 7, "times": 1})
	testcaddy.Fault(t, sbx, map[string]any{"provider": "sumsub", "op": op, "malformed": true, "times": 1})
	c := testcaddy.Client()
	for _, want := range []struct {
		status int
		msg    string
	}{{502, "upstream answered 401"}, {429, "rate limiting"}, {502, "malformed"}} {
		st, v := s.Do(c, "GET", "/api/start", "")
		if st != want.status || !strings.Contains(fmt.Sprint(v["error"]), want.msg) || strings.Contains(fmt.Sprint(v), "signature mismatch") {
			t.Fatalf("start: %d %v, want %d %q", st, v, want.status, want.msg)
		}
	}
	if st, _ := s.Do(c, "GET", "/api/session", ""); st != 401 {
		t.Fatalf("a failed start left a session: %d", st)
	}
	st, a := s.Do(c, "GET", "/api/start", "")
	if st != 200 {
		t.Fatalf("start: %d %v", st, a)
	}
	testcaddy.Fault(t, sbx, map[string]any{"provider": "sumsub", "op": op, "status": 500, "times": 1})
	if st, v := s.Do(c, "GET", "/api/token", ""); st != 502 || v["token"] != nil {
		t.Fatalf("token during an outage: %d %v", st, v)
	}
	if st, v := s.Do(c, "GET", "/api/token", ""); st != 200 || v["token"] == nil {
		t.Fatalf("token after: %d %v", st, v)
	}
	for _, secretish := range []string{secretKey, hookKey, appToken} {
		if strings.Contains(fmt.Sprint(a), secretish) {
			t.Fatalf("a secret in the start answer")
		}
	}
}

// TestEmulatorConfigErrors: the emulator's block is checked as strictly.
func TestEmulatorConfigErrors(t *testing.T) {
	full := "app_token t\n\t\t\tsecret_key s\n\t\t\t"
	for block, want := range map[string]string{
		"secret_key s":                           "app_token and secret_key are required",
		full + "webhook_alg HMAC_MD5_HEX":        "webhook_alg: HMAC_SHA1_HEX, HMAC_SHA256_HEX or HMAC_SHA512_HEX",
		full + "webhook_url http://127.0.0.1:1/": "webhook_url needs webhook_secret",
		full + "webhook_retry 1s 2":              "webhook_retry takes 3 values",
		full + "webhook_retry 1s 0.5 3":          "factor must be a number >= 1",
		full + "webhook_auth header X-A b":       `unknown option "webhook_auth"`,
		full + "secret_key again":                "secret_key given twice",
	} {
		err := testcaddy.LoadError(t, "http://127.0.0.1:@@sandbox@@ {\n\tidv_sandbox {\n\t\tsumsub {\n\t\t\t"+block+"\n\t\t}\n\t}\n}")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", block, err, want)
		}
	}
}
