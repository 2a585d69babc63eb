package sumsub

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// FuzzParseWebhook: any body either parses into events whose references and
// statuses are safe for storage keys and logs, or is refused with a 400.
func FuzzParseWebhook(f *testing.F) {
	testcaddy.FuzzWebhookParser(f, parseWebhook, func(ev provider.KitEvent) bool {
		return userRe.MatchString(ev.Ref) && statusRe.MatchString(ev.Status) && len(ev.Key) <= 300 && ev.Key != ""
	},
		`{"applicantId":"5cb56e8e0a975a35f333cb83","inspectionId":"5cb56e8e0a975a35f333cb84","correlationId":"req-a260b669-4f14-4bb5-a4c5-ac0218acb9a4","externalUserId":"u-1","levelName":"basic-kyc-level","type":"applicantReviewed","sandboxMode":true,"reviewStatus":"completed","createdAtMs":"2020-02-21 13:23:19.321","reviewResult":{"reviewAnswer":"RED","reviewRejectType":"RETRY"}}`,
		`{"applicantId":"5cb56e8e0a975a35f333cb83","externalUserId":"u-1","type":"applicantPending","reviewStatus":"pending","createdAtMs":"2020-02-21 13:23:19.321"}`,
		`{"type":"applicantCreated"}`,
	)
}

// FuzzVerifyWebhook: only the exact HMAC of the body with one of the
// secrets, in the algorithm named (SHA-256 when none is), verifies.
func FuzzVerifyWebhook(f *testing.F) {
	p := &Sumsub{webhookSecrets: [][]byte{[]byte("s1"), []byte("s2")}}
	f.Add([]byte(`{}`), "", "")
	f.Add([]byte(`{}`), Digest("HMAC_SHA1_HEX", []byte("s1"), []byte(`{}`)), "HMAC_SHA1_HEX")
	f.Add([]byte(`{}`), Digest("HMAC_SHA256_HEX", []byte("s1"), []byte(`{}`)), "")
	f.Fuzz(func(t *testing.T, body []byte, sig, alg string) {
		err := p.VerifyWebhook(http.Header{"X-Payload-Digest": {sig}, "X-Payload-Digest-Alg": {alg}}, body)
		a := strings.TrimSpace(alg)
		if a == "" {
			a = DefaultDigestAlg
		}
		got := strings.ToLower(strings.TrimSpace(sig))
		want1, want2 := Digest(a, []byte("s1"), body), Digest(a, []byte("s2"), body)
		valid := want1 != "" && (got == want1 || got == want2)
		if (err == nil) != valid {
			t.Fatalf("sig %q alg %q: err %v, valid %v", sig, alg, err, valid)
		}
	})
}
