package provider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

type opts struct {
	key     string
	secrets []string
	ttl     caddy.Duration
}

func parse(src string) (opts, error) {
	var o opts
	d := caddyfile.NewTestDispenser(src)
	err := provider.ParseOptions(d, "demo", map[string]provider.Option{
		"api_key":       provider.String(&o.key),
		"shared_secret": provider.Strings(&o.secrets),
		"token_ttl":     provider.Duration(&o.ttl),
	})
	return o, err
}

func TestParseOptions(t *testing.T) {
	o, err := parse("demo {\n api_key k\n shared_secret a\n shared_secret b\n token_ttl 10m\n}")
	if err != nil || o.key != "k" || strings.Join(o.secrets, ",") != "a,b" || o.ttl != caddy.Duration(600e9) {
		t.Fatalf("%+v %v", o, err)
	}
	for src, want := range map[string]string{
		"demo x":                            "takes a block of options",
		"demo {\n nope 1\n}":                `unknown option "nope"`,
		"demo {\n api_key\n}":               "api_key needs a value",
		"demo {\n api_key a b\n}":           "api_key takes one value",
		"demo {\n api_key a\n api_key b\n}": "api_key given twice",
		"demo {\n token_ttl soon\n}":        "token_ttl: a positive duration",
		"demo {\n token_ttl -1s\n}":         "token_ttl: a positive duration",
		"demo {\n shared_secret a b\n}":     "shared_secret takes one value",
	} {
		if _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

// TestParseOptionsFlagsAndTypos: a flag is written alone, and an unknown
// option names the one it likely misspells.
func TestParseOptionsFlagsAndTypos(t *testing.T) {
	parse := func(src string) (string, bool, error) {
		var key string
		var on bool
		err := provider.ParseOptions(caddyfile.NewTestDispenser(src), "demo", map[string]provider.Option{
			"api_key": provider.String(&key),
			"verbose": provider.Flag(&on),
		})
		return key, on, err
	}
	if key, on, err := parse("demo {\n verbose\n api_key k\n}"); err != nil || !on || key != "k" {
		t.Fatalf("flag: %q %v %v", key, on, err)
	}
	if _, on, err := parse("demo {\n api_key k\n}"); err != nil || on {
		t.Fatalf("flag absent: %v %v", on, err)
	}
	for src, want := range map[string]string{
		"demo {\n verbose yes\n}":       "demo: verbose takes no value",
		"demo {\n verbose\n verbose\n}": "verbose given twice",
		"demo {\n api_kye k\n}":         `demo: unknown option "api_kye": did you mean "api_key"?`,
		"demo {\n zzz k\n}":             `demo: unknown option "zzz"; valid options: api_key, verbose`,
	} {
		if _, _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

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
