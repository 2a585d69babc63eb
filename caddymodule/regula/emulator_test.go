package regula_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestEmulatorChecks: the sandbox checks credentials and fields as a real
// platform would, so a sidecar bug shows up as a refusal, and counts each
// call by the credential it carried.
func TestEmulatorChecks(t *testing.T) {
	s := startStack(t, stackOpts{})
	call := func(method, path, auth, body string) (int, string) {
		t.Helper()
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		status, _, out := testcaddy.Do(t, http.DefaultClient, method, s.sandbox(path), rd, hdr...)
		return status, out
	}
	expect := func(what string, status, want int, body string) {
		t.Helper()
		if status != want {
			t.Fatalf("%s: %d %s, want %d", what, status, body, want)
		}
	}
	mint := func() string {
		t.Helper()
		status, body := call("POST", "/api/device/ephemeral", apiKey, `{"ttl":60}`)
		var out struct{ Authorization string }
		if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || !strings.HasPrefix(out.Authorization, "Token ") {
			t.Fatalf("ephemeral: %d %s", status, body)
		}
		return out.Authorization
	}

	// Ephemeral tokens: only the API key, in the configured scheme, with a sane ttl.
	for _, tc := range []struct{ auth, body string }{{"", `{"ttl":60}`}, {"wrong", `{"ttl":60}`}, {"ApiKey " + apiKey, `{"ttl":60}`}} {
		status, body := call("POST", "/api/device/ephemeral", tc.auth, tc.body)
		expect("ephemeral with "+tc.auth, status, http.StatusUnauthorized, body)
	}
	for _, body := range []string{`{}`, `{"ttl":0}`, `{"ttl":-5}`, `{"ttl":"x"}`, `{"ttl":1.5}`, `{"ttl":7201}`, `{`} {
		status, out := call("POST", "/api/device/ephemeral", apiKey, body)
		expect("ephemeral "+body, status, http.StatusBadRequest, out)
	}
	status, body := call("GET", "/api/device/ephemeral", apiKey, "")
	expect("GET ephemeral", status, http.StatusMethodNotAllowed, body)
	tok, other := mint(), mint()

	// Sessions: an ephemeral token used verbatim, the right workflow.
	for _, tc := range []struct {
		auth, query string
		want        int
	}{
		{apiKey, "?workflowId=wf-test", http.StatusForbidden},
		{"", "?workflowId=wf-test", http.StatusUnauthorized},
		{"Bearer " + strings.TrimPrefix(tok, "Token "), "?workflowId=wf-test", http.StatusUnauthorized},
		{strings.TrimPrefix(tok, "Token "), "?workflowId=wf-test", http.StatusUnauthorized},
		{tok, "", http.StatusBadRequest},
		{tok, "?workflowId=other", http.StatusBadRequest},
	} {
		status, body := call("POST", "/api/sessions"+tc.query, tc.auth, `{"metadata":{}}`)
		expect("create session with "+tc.auth+tc.query, status, tc.want, body)
	}
	status, body = call("POST", "/api/sessions?workflowId=wf-test", tok, `{"metadata":{"externalUserId":"u1"}}`)
	var created struct {
		ID     string `json:"id"`
		Status *int   `json:"status"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &created) != nil || created.ID == "" || created.Status == nil || *created.Status != 0 {
		t.Fatalf("create session: %d %s", status, body)
	}

	// Results: the API key reads any session, a token only its own.
	status, body = call("GET", "/api/sessions/"+created.ID, apiKey, "")
	var got struct {
		ID         string         `json:"id"`
		Status     int            `json:"status"`
		Properties map[string]any `json:"properties"`
		Files      []any          `json:"files"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.ID != created.ID || got.Files == nil || got.Properties["externalUserId"] != "u1" {
		t.Fatalf("results API: %d %s", status, body)
	}
	for _, tc := range []struct {
		auth string
		want int
	}{{tok, http.StatusOK}, {other, http.StatusForbidden}, {"", http.StatusUnauthorized}, {"Token junk", http.StatusUnauthorized}} {
		status, body := call("GET", "/api/sessions/"+created.ID, tc.auth, "")
		expect("results with "+tc.auth, status, tc.want, body)
	}
	status, body = call("GET", "/api/sessions/nope", apiKey, "")
	expect("unknown session", status, http.StatusNotFound, body)
	status, body = call("GET", "/api/anything", apiKey, "")
	expect("echo with the API key", status, http.StatusUnauthorized, body)

	// Hosted pages: the link must be this platform's, with the session's own token.
	mobile := func(auth, sid string) string {
		return "/mobile?authorization=" + url.QueryEscape(auth) + "&sessionId=" + sid
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{mobile(tok, created.ID), http.StatusOK},
		{mobile(other, created.ID), http.StatusForbidden},
		{mobile("Token junk", created.ID), http.StatusUnauthorized},
		{mobile(tok, "nope"), http.StatusNotFound},
		{"/capture?url=" + url.QueryEscape("http://elsewhere.example"+mobile(tok, created.ID)), http.StatusBadRequest},
		{"/capture", http.StatusBadRequest},
		{"/capture?url=" + url.QueryEscape(s.sandbox(mobile(tok, created.ID))), http.StatusOK},
	} {
		status, body := call("GET", tc.path, "", "")
		expect("GET "+tc.path, status, tc.want, body)
	}

	calls := s.calls()
	for k, min := range map[string]int{
		"regula api/device/ephemeral none":         1,
		"regula api/device/ephemeral invalid":      2,
		"regula api/device/ephemeral api_key":      9,
		"regula api/sessions api_key":              1,
		"regula api/sessions ephemeral_token":      3,
		"regula api/sessions/{id} ephemeral_token": 2,
		"regula api/* api_key":                     1,
		"regula mobile GET ephemeral_token":        3,
		"regula capture GET ephemeral_token":       1,
		"regula mobile GET invalid":                1,
		"regula api/sessions/{id} invalid":         1,
	} {
		if calls[k] < min {
			t.Errorf("%s: %d calls, want at least %d (all: %v)", k, calls[k], min, calls)
		}
	}
}
