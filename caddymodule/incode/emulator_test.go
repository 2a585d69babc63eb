package incode_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestEmulatorChecksCredentials: the sandbox answers like Incode: 403
// without a valid API key, 401 without a valid unexpired token, 400 for a
// missing field.
func TestEmulatorChecksCredentials(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
			token_ttl 1s
		}
	}
}`)
	sb := in.URL("sandbox", "")
	call := func(method, path, body string, hdr ...string) (int, map[string]any) {
		var status int
		var b string
		if body == "" {
			status, _, b = testcaddy.Do(t, testcaddy.Client(), method, sb+path, nil, hdr...)
		} else {
			status, _, b = testcaddy.Do(t, testcaddy.Client(), method, sb+path, strings.NewReader(body), hdr...)
		}
		return status, testcaddy.JSON(t, b)
	}
	start := `{"configurationId":"f","countryCode":"ALL","language":"en-US"}`
	for _, tc := range []struct {
		method, path, body string
		hdr                []string
		want               int
	}{
		{"POST", "/omni/start", start, nil, 403},
		{"POST", "/omni/start", start, []string{"X-Api-Key", "wrong"}, 403},
		{"POST", "/omni/start", `{"countryCode":"ALL"}`, []string{"X-Api-Key", "k"}, 400},
		{"POST", "/omni/start", `{"configurationId":"other","countryCode":"ALL"}`, []string{"X-Api-Key", "k"}, 400},
		{"POST", "/executive/log-in", `{"email":"a@b.c","password":"p"}`, nil, 403},
		{"POST", "/executive/log-in", `{"email":"a@b.c","password":"x"}`, []string{"X-Api-Key", "k"}, 401},
		{"POST", "/executive/log-in", `{"email":"a@b.c"}`, []string{"X-Api-Key", "k"}, 400},
		{"GET", "/0/omni/onboarding-url?clientId=c", "", nil, 401},
		{"GET", "/0/omni/onboarding-url?clientId=c", "", []string{"X-Incode-Hardware-Id", "not-a-jwt"}, 401},
		{"GET", "/omni/get/score?id=x", "", []string{"X-Api-Key", "k"}, 401},
	} {
		if status, m := call(tc.method, tc.path, tc.body, tc.hdr...); status != tc.want || m["status"] != float64(tc.want) || m["message"] == nil {
			t.Errorf("%s %s %v: %d %v, want %d with Incode's error shape", tc.method, tc.path, tc.hdr, status, m, tc.want)
		}
	}
	status, m := call("POST", "/omni/start", start, "X-Api-Key", "k")
	tok, _ := m["token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("start: %d %v", status, m)
	}
	// backend-nodejs (index.js, /onboarding-url) sends no clientId, and
	// python-samples (sample-server/Session.py) sends the API key with the
	// session token on this /0/ call: the real API accepts both.
	if status, m := call("GET", "/0/omni/onboarding-url", "", "X-Incode-Hardware-Id", tok, "X-Api-Key", "k"); status != 200 {
		t.Fatalf("onboarding-url without clientId, with the key: %d %v", status, m)
	}
	if status, m := call("GET", "/0/omni/onboarding-url?clientId=other", "", "X-Incode-Hardware-Id", tok); status != 400 {
		t.Fatalf("onboarding-url with a foreign clientId: %d %v", status, m)
	}
	// backend-nodejs /fetch-score: x-api-key + session token on
	// /omni/get/score (not /0/), and /finish the same on /omni/finish-status.
	if status, m := call("GET", "/omni/get/score?id=ignored", "", "X-Incode-Hardware-Id", tok, "X-Api-Key", "k", "api-version", "1.0", "Content-Type", "application/json"); status != 200 || m["overall"] == nil {
		t.Fatalf("score with key + session token: %d %v", status, m)
	}
	if status, m := call("GET", "/0/omni/get/score", "", "X-Incode-Hardware-Id", tok, "X-Api-Key", "k"); status != 200 {
		t.Fatalf("/0/ score with the key too: %d %v", status, m)
	}
	// backend-php (sample-server/index.php, auth()): the API key alone.
	if status, m := call("POST", "/omni/auth-attempt/verify", `{"transactionId":"t","token":"f","interviewToken":"`+tok+`"}`,
		"Accept", "application/json", "Content-Type", "application/json", "api-version", "1.0", "x-api-key", "k"); status != 200 || m["verified"] != true {
		t.Fatalf("auth-attempt/verify with the key: %d %v", status, m)
	}
	if status, m := call("POST", "/omni/auth-attempt/verify", `{"transactionId":"t","token":"f","interviewToken":"x"}`); status != 403 || m["status"] != float64(403) {
		t.Fatalf("auth-attempt/verify without the key: %d %v", status, m)
	}
	if status, _ := call("GET", "/0/omni/onboarding-url?clientId=c", "", "X-Incode-Hardware-Id", tok); status != 200 {
		t.Fatalf("onboarding-url with a live token: %d", status)
	}
	// The token has a real exp (token_ttl 1s): once past it, 401.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := call("GET", "/0/omni/onboarding-url?clientId=c", "", "X-Incode-Hardware-Id", tok)
		if status == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session token never expired: %d", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	calls := testcaddy.Calls(t, sb)
	if calls["incode 0/omni/onboarding-url expired_token"] == 0 || calls["incode omni/start invalid_api_key"] != 1 {
		t.Fatalf("counters by credential kind: %v", calls)
	}
}

// TestProviderRedirectsAreNotFollowed: when the provider answers with a
// redirect to another host, the handler's client does not follow it, so the
// API key never reaches that host.
func TestProviderRedirectsAreNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer provider.Close()
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url `+provider.URL+`
			api_key k
			flow_id f
			client_id c
		}
	}
}`)
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("site", "/api/start"), nil)
	if status != http.StatusBadGateway || !strings.Contains(body, "upstream answered 307") || elsewhere.Load() != 0 {
		t.Fatalf("%d %s; %d requests reached the other host", status, body, elsewhere.Load())
	}
}

// TestEmulatorWebhookSettingsResolvePlaceholders: every webhook setting of
// the emulator's block may be a placeholder, the OAuth2 token URL too (it
// was once left unresolved, so the emulator asked for a token at
// "{env.…}" and never delivered).
func TestEmulatorWebhookSettingsResolvePlaceholders(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "cid" || secret != "csecret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"hook-token"}`))
	}))
	defer tokens.Close()
	got := make(chan string, 8)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	t.Setenv("IDV_TEST_HOOK_URL", receiver.URL)
	t.Setenv("IDV_TEST_TOKEN_URL", tokens.URL)
	t.Setenv("IDV_TEST_CLIENT_SECRET", "csecret")
	in := testcaddy.Start(t, `
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
			webhook_url {env.IDV_TEST_HOOK_URL}
			webhook_auth oauth2 cid {env.IDV_TEST_CLIENT_SECRET} {env.IDV_TEST_TOKEN_URL}
			webhook_retry 10ms 1 2
		}
	}
}`)
	sb := in.URL("sandbox", "")
	c := testcaddy.Client()
	_, m := testcaddy.DoJSON(t, c, "POST", sb+"/omni/start", `{"configurationId":"f"}`, "X-Api-Key", "k")
	tok, _ := m["token"].(string)
	if _, m = testcaddy.DoJSON(t, c, "GET", sb+"/omni/finish-status", "", "X-Incode-Hardware-Id", tok); m["action"] != "none" {
		t.Fatalf("finish-status: %v", m)
	}
	select {
	case auth := <-got:
		if auth != "Bearer hook-token" {
			t.Fatalf("webhook delivered with Authorization %q", auth)
		}
	case <-time.After(10 * time.Second): // bounds a broken test only
		t.Fatal("no webhook delivered")
	}
}
