package incode

import (
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// TestCredsStringAsJoined: the counters' labels are what joining the parts
// with "+" gave.
func TestCredsStringAsJoined(t *testing.T) {
	for _, key := range []creds{{}, {keyGiven: true}, {keyGiven: true, keyOK: true}} {
		for _, kind := range []string{"", "session", "executive", "invalid", "expired"} {
			c := key
			c.tokKind = kind
			var parts []string
			if c.keyOK {
				parts = append(parts, sandbox.CredAPIKey)
			} else if c.keyGiven {
				parts = append(parts, "invalid_api_key")
			}
			switch kind {
			case "session":
				parts = append(parts, sandbox.CredSession)
			case "executive":
				parts = append(parts, sandbox.CredExecutive)
			case "":
			default:
				parts = append(parts, kind+"_token")
			}
			want := strings.Join(parts, "+")
			if want == "" {
				want = sandbox.CredNone
			}
			if got := c.String(); got != want {
				t.Errorf("%+v: %q, want %q", c, got, want)
			}
		}
	}
}
