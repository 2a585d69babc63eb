package caddymodule_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

const (
	apiKey     = "sk-live-APIKEY-7f3a9c1e5b"
	adminPass  = "pw-ADMIN-PASSWORD-4d2e8f"
	hookSecret = "hook-SECRET-9b1c7a3e"
)

// leaks reports every secret, and every executive token (a JWT whose
// payload says typ executive), found in text.
func leaks(text string) []string {
	var found []string
	for _, s := range []string{apiKey, adminPass, hookSecret} {
		if strings.Contains(text, s) {
			found = append(found, s)
		}
	}
	for _, tok := range regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*`).FindAllStringSubmatch(text, -1) {
		payload, _ := base64.RawURLEncoding.DecodeString(tok[1])
		var claims map[string]any
		if json.Unmarshal(payload, &claims) == nil && claims["typ"] == "executive" {
			found = append(found, "executive token "+tok[0][:16]+"…")
		}
	}
	return found
}

func TestSecretsNeverLeave(t *testing.T) {
	// Secrets are configured as documented, through {env.*}: Caddy's own
	// debug log prints the JSON config, which must therefore hold none.
	t.Setenv("LEAK_API_KEY", apiKey)
	t.Setenv("LEAK_ADMIN_PASSWORD", adminPass)
	t.Setenv("LEAK_HOOK_SECRET", hookSecret)
	dir := t.TempDir()
	access, control := filepath.Join(dir, "access.log"), filepath.Join(dir, "control.log")
	config := fmt.Sprintf(`
(idv_log_filters) {
	log {
		output file %s
		format filter {
			request>headers>X-Api-Key delete
			request>headers>X-Incode-Hardware-Id delete
			request>headers>X-Token delete
			request>headers>Auth delete
			request>headers>X-Webhook-Secret delete
		}
	}
}
http://127.0.0.1:@@site@@ {
	import idv_log_filters
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key {env.LEAK_API_KEY}
			flow_id f
			client_id c
			admin_email admin@x.test
			admin_password {env.LEAK_ADMIN_PASSWORD}
		}
		webhook_auth header X-Webhook-Secret {env.LEAK_HOOK_SECRET}
		timeout 1s
	}
	respond "frontend"
}
# The positive control: the same request, logged without the filters.
http://127.0.0.1:@@control@@ {
	log {
		output file %[2]s
	}
	respond "control"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key {env.LEAK_API_KEY}
			flow_id f
			client_id c
			admin_email admin@x.test
			admin_password {env.LEAK_ADMIN_PASSWORD}
		}
	}
}`, access, control)
	in := testcaddy.Start(t, config, testcaddy.Options{Debug: true, LogFile: true})

	var seen strings.Builder // every response, headers and body
	c := testcaddy.Client()
	call := func(method, path, body string, hdr ...string) map[string]any {
		var status int
		var h http.Header
		var b string
		if body == "" {
			status, h, b = testcaddy.Do(t, c, method, in.URL("site", path), nil, hdr...)
		} else {
			status, h, b = testcaddy.Do(t, c, method, in.URL("site", path), strings.NewReader(body), hdr...)
		}
		fmt.Fprintf(&seen, "%s %s -> %d %v %s\n", method, path, status, h, b)
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		return m
	}
	hook := []string{"X-Webhook-Secret", hookSecret}
	// Every route, including failures, with the client sending credentials
	// it should not (they must be neither forwarded nor logged).
	ob := call("GET", "/api/onboarding-url", "", "X-Api-Key", apiKey)
	iid, tok := fmt.Sprint(ob["interviewId"]), fmt.Sprint(ob["token"])
	call("GET", "/api/start", "")
	call("GET", "/api/start?uniqueId="+fmt.Sprint(ob["uniqueId"]), "")
	call("GET", "/api/start?uniqueId=bogus", "")
	call("GET", "/api/onboarding-status?interviewId="+iid, "")
	call("GET", "/api/onboarding-status?interviewId=missing", "")
	call("GET", "/api/fetch-score?interviewId="+iid, "", "X-Token", tok)
	call("POST", "/api/auth", fmt.Sprintf(`{"transactionId":"t","token":"f","interviewToken":%q}`, tok))
	call("POST", "/api/finish", fmt.Sprintf(`{"token":%q}`, tok))
	call("POST", "/api/webhook", fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, iid), hook...)
	call("POST", "/api/approve", fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ONBOARDING_FINISHED"}`, iid), hook...)
	call("POST", "/api/webhook", `{}`, "X-Webhook-Secret", "wrong")
	call("GET", "/api/0/omni/get/score", "", "X-Api-Key", apiKey, "Authorization", "Bearer "+apiKey)
	call("GET", "/api/omni/../../executive/log-in", "")
	call("GET", "/api/session", "")
	call("GET", "/api/executive-token", "")
	testcaddy.Fault(t, in.URL("sandbox", ""), map[string]any{"op": "omni/get/onboarding/status", "status": 500, "body": `{"message":"` + apiKey + `"}`, "times": 2})
	call("GET", "/api/onboarding-status?interviewId="+iid, "")
	testcaddy.Fault(t, in.URL("sandbox", ""), map[string]any{"op": "omni/get/onboarding/status", "latency": "2s", "times": 1})
	call("GET", "/api/onboarding-status?interviewId="+iid, "")
	testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("control", "/"), nil, "X-Api-Key", apiKey)

	// Logs are written asynchronously: wait for the control line.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(control)
		if len(leaks(string(b))) > 0 {
			break // the detector sees a planted secret: it can fail
		}
		if time.Now().After(deadline) {
			t.Fatalf("positive control: the planted API key was not found in the unfiltered log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	accessLog, _ := os.ReadFile(access)
	if !strings.Contains(string(accessLog), "/api/onboarding-url") {
		t.Fatal("access log is empty: nothing was checked")
	}
	if !strings.Contains(in.Logs(), `"op":"executive/log-in"`) {
		t.Fatal("debug log lacks the provider calls: nothing was checked")
	}
	for name, text := range map[string]string{"responses": seen.String(), "access log": string(accessLog), "debug log": in.Logs()} {
		if found := leaks(text); len(found) > 0 {
			t.Errorf("%s contain %v", name, found)
			for _, line := range strings.Split(text, "\n") {
				if len(leaks(line)) > 0 {
					t.Logf("  %.600s", line)
				}
			}
		}
	}
}
