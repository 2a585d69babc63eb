package provider_test

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// TestFlagAndSuggestion: a Flag option is written alone; an unknown option
// is answered with the closest valid one, or the list of them.
func TestFlagAndSuggestion(t *testing.T) {
	parse := func(src string) (bool, error) {
		var key string
		var trusted bool
		err := provider.ParseOptions(caddyfile.NewTestDispenser(src), "demo", map[string]provider.Option{
			"api_key": provider.String(&key), "trusted": provider.Flag(&trusted),
		})
		return trusted, err
	}
	if trusted, err := parse("demo {\n api_key k\n trusted\n}"); err != nil || !trusted {
		t.Fatalf("flag: %v %v", trusted, err)
	}
	if trusted, err := parse("demo {\n api_key k\n}"); err != nil || trusted {
		t.Fatalf("no flag: %v %v", trusted, err)
	}
	for src, want := range map[string]string{
		"demo {\n trusted yes\n}": "demo: trusted takes no value",
		"demo {\n api_kye k\n}":   `demo: unknown option "api_kye": did you mean "api_key"?`,
		"demo {\n secret k\n}":    `demo: unknown option "secret"; valid options: api_key, trusted`,
	} {
		if _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
