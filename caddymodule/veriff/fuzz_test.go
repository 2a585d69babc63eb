package veriff

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// FuzzParseWebhook: any body either parses into events whose ids and
// statuses are safe for storage keys and logs, or is refused with a 400.
func FuzzParseWebhook(f *testing.F) {
	testcaddy.FuzzWebhookParser(f, parseWebhook, func(ev provider.KitEvent) bool {
		return idRe.MatchString(ev.Ref) && statusRe.MatchString(ev.Status) && len(ev.Key) <= 200
	},
		`{"status":"success","verification":{"id":"12df6045-3f8e-4b3a-9c57-1c7c3b2d6a11","attemptId":"a1","status":"approved","code":9001,"decisionTime":"2019-11-06T07:18:36.916Z"}}`,
		`{"id":"f04bdb47-d3be-4b28-b028-a652feb060b5","attemptId":"e30122d1","feature":"selfid","code":7002,"action":"submitted"}`,
		`{"verification":null}`,
	)
}

// FuzzVerifyWebhook: only the exact HMAC of the body verifies.
func FuzzVerifyWebhook(f *testing.F) {
	p := &Veriff{key: "k", secrets: [][]byte{[]byte("s1"), []byte("s2")}}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{}`), sign([]byte("s1"), []byte(`{}`)))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		err := p.VerifyWebhook(http.Header{"X-Hmac-Signature": {sig}}, body)
		ts := strings.TrimSpace(sig)
		valid := sig != "" && (equalFold(ts, sign([]byte("s1"), body)) || equalFold(ts, sign([]byte("s2"), body)))
		if (err == nil) != valid {
			t.Fatalf("sig %q: err %v, valid %v", sig, err, valid)
		}
	})
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'F' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
