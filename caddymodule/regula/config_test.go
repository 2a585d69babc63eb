package regula_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/regula"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestProvisionErrors: each missing or wrong field is named.
func TestProvisionErrors(t *testing.T) {
	ok := regula.Regula{Host: "https://idv.example.com", APIKey: "k", WorkflowID: "w"}
	for _, tc := range []struct {
		name string
		edit func(*regula.Regula)
		want string
	}{
		{"valid", func(*regula.Regula) {}, ""},
		{"bare host", func(p *regula.Regula) { p.Host = "idv.example.com:8443" }, ""},
		{"no api_key", func(p *regula.Regula) { p.APIKey = "" }, "api_key is required"},
		{"unset env api_key", func(p *regula.Regula) { p.APIKey = "{env.REGULA_TEST_UNSET_VARIABLE}" }, "api_key is required"},
		{"no workflow_id", func(p *regula.Regula) { p.WorkflowID = " " }, "workflow_id is required"},
		{"no host", func(p *regula.Regula) { p.Host = "" }, "host is required"},
		{"ftp host", func(p *regula.Regula) { p.Host = "ftp://idv.example.com" }, "host must be an http or https URL"},
		{"host with a query", func(p *regula.Regula) { p.Host = "https://idv.example.com?x=1" }, "host must be an http or https URL"},
		{"host with a path", func(p *regula.Regula) { p.Host = "https://idv.example.com/regula" }, "without a path"},
		{"short ttl", func(p *regula.Regula) { p.TTL = caddy.Duration(500 * time.Millisecond) }, "ttl must be at least 1s"},
		{"two-word scheme", func(p *regula.Regula) { p.APIKeyScheme = "Api Key" }, "api_key_scheme must be one word"},
		{"two-word results scheme", func(p *regula.Regula) { p.ResultsKeyScheme = "Api Key" }, "results_key_scheme must be one word"},
		{"deeplink flow", func(p *regula.Regula) { p.Flow = "deeplink" }, ""},
		{"unknown flow", func(p *regula.Regula) { p.Flow = "magic" }, "flow must be ephemeral or deeplink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			err := p.ProvisionIDV(caddy.Context{}, &provider.Host{Timeout: time.Second})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

const badSite = `{
	admin off
}
http://127.0.0.1:0 {
	idv {
		regula {
%s
		}
	}
}`

// TestCaddyfileErrors: a bad block fails at adapt or load with an error
// that names the provider and the field.
func TestCaddyfileErrors(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, tc := range []struct{ block, want string }{
		{"host https://idv.example.com\n workflow_id w", "regula: api_key is required"},
		{"host https://idv.example.com\n api_key k", "regula: workflow_id is required"},
		{"api_key k\n workflow_id w", "regula: host is required"},
		{"api_key", "regula: api_key needs a value"},
		{"api_key a b", "regula: api_key takes one value"},
		{"bogus x", `regula: unknown option "bogus"`},
		{"ttl forever", "regula: ttl"},
		{"flow magic", "regula: flow must be ephemeral or deeplink"},
	} {
		cfg, _, err := adapter.Adapt([]byte(strings.ReplaceAll(badSite, "%s", tc.block)), nil)
		if err == nil {
			err = caddy.Load(cfg, true)
			_ = caddy.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.block, err, tc.want)
		}
	}
}

// TestAdaptGolden: the Caddyfiles in testdata adapt to the JSON beside
// them, and {env.*} placeholders stay placeholders (secrets are resolved at
// provision, never written into the config). Run with -update to rewrite
// the JSON.
func TestAdaptGolden(t *testing.T) {
	testcaddy.Golden(t, "{env.REGULA_API_KEY}")
}
