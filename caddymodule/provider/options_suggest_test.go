package provider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// TestParseOptionsWording: an unknown option names the closest valid one,
// and an error that names its option already is not prefixed with it twice.
func TestParseOptionsWording(t *testing.T) {
	parse := func(src string) error {
		var v string
		return provider.ParseOptions(caddyfile.NewTestDispenser(src), "demo", map[string]provider.Option{
			"workflow_id": provider.String(&v),
			"flow":        {Set: func(a []string) error { return errors.New("flow must be a or b") }},
			"mode":        {Set: func(a []string) error { return errors.New("one of a, b") }},
		})
	}
	for src, want := range map[string]string{
		"demo {\n workflow x\n}": `demo: unknown option "workflow": did you mean "workflow_id"?`,
		"demo {\n zzz x\n}":      `demo: unknown option "zzz"; valid options: flow, mode, workflow_id`,
		"demo {\n flow x\n}":     "demo: flow must be a or b",
		"demo {\n mode x\n}":     "demo: mode: one of a, b",
	} {
		if err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
