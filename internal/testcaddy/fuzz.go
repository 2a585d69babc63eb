package testcaddy

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// FuzzWebhookParser fuzzes a kit provider's webhook parser from seeds
// (plus `[]`) with CheckParsedWebhook.
func FuzzWebhookParser(f *testing.F, parse func([]byte) ([]provider.KitEvent, error), safe func(provider.KitEvent) bool, seeds ...string) {
	for _, s := range append(seeds, `[]`) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := parse(body)
		CheckParsedWebhook(t, evs, err, safe)
	})
}

// CheckParsedWebhook is what a kit provider's webhook parser must hold to
// under fuzzing: a body is either refused with a 400 (a *provider.Error),
// or parses into events that safe accepts (references, statuses and keys fit
// for storage keys and logs), each with a valid UTF-8 key, and a result only
// in a decision.
func CheckParsedWebhook(t testing.TB, evs []provider.KitEvent, err error, safe func(provider.KitEvent) bool) {
	t.Helper()
	if err != nil {
		if pe, ok := err.(*provider.Error); !ok || pe.Status != http.StatusBadRequest {
			t.Fatalf("error %v is not a 400", err)
		}
		return
	}
	for _, ev := range evs {
		if !safe(ev) || !utf8.ValidString(ev.Key) {
			t.Fatalf("unsafe event %+v", ev)
		}
		if ev.Result != "" && !ev.Decision {
			t.Fatalf("a result outside a decision: %+v", ev)
		}
	}
}
