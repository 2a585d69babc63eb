package onfido

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// FuzzParseWebhook: any body either parses into events whose ids and
// statuses are safe for storage keys and logs, or is refused with a 400.
func FuzzParseWebhook(f *testing.F) {
	testcaddy.FuzzWebhookParser(f, parseWebhook, func(ev provider.KitEvent) bool {
		return idRe.MatchString(ev.Ref) && statusRe.MatchString(ev.Status) && len(ev.Key) <= 200
	},
		`{"payload":{"resource_type":"workflow_run","action":"workflow_run.completed","object":{"id":"1511d0a2-b13a-424f-9517-678db7fccb08","status":"approved","completed_at_iso8601":"2026-12-02T10:00:00Z","href":"https://api.eu.onfido.com/v3.6/workflow_runs/1511d0a2"}}}`,
		`{"payload":{"resource_type":"check","action":"check.completed","object":{"id":"check-123","status":"complete","completed_at_iso8601":"2020-01-01T00:00:00Z","href":"https://api.onfido.com/v3/checks/check-123"}}}`,
		`{"payload":{"resource_type":"workflow_task","action":"workflow_task.completed","object":{"id":"profile_1234","status":"completed"}}}`,
		`{"payload":null}`,
	)
}

// FuzzVerifyWebhook: only the exact HMAC-SHA256 of the body with one of the
// webhook tokens verifies.
func FuzzVerifyWebhook(f *testing.F) {
	keys := [][]byte{[]byte("t1"), []byte("t2")}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{}`), sign([]byte("t1"), []byte(`{}`)))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		err := verify(keys, http.Header{"X-Sha2-Signature": {sig}}, body)
		ts := strings.ToLower(strings.TrimSpace(sig))
		valid := sig != "" && (ts == sign([]byte("t1"), body) || ts == sign([]byte("t2"), body))
		if (err == nil) != valid {
			t.Fatalf("sig %q: err %v, valid %v", sig, err, valid)
		}
	})
}

// TestExpiryFallback: a token without an exp claim is cached for the SDK
// token lifetime.
func TestExpiryFallback(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	p := &Onfido{ttl: DefaultSDKTokenTTL, host: &provider.Host{Now: func() time.Time { return now }}}
	if got := p.expiry("not-a-jwt"); !got.Equal(now.Add(90 * time.Minute)) {
		t.Fatalf("fallback %v", got)
	}
}
