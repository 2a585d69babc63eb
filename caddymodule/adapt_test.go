package caddymodule_test

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files in testdata")

// TestAdaptGolden: testdata/*.caddyfile adapt to the JSON beside them
// (go test ./caddymodule/ -run TestAdaptGolden -update rewrites them).
func TestAdaptGolden(t *testing.T) {
	testcaddy.AdaptGolden(t, *update, "{env.INCODE_API_KEY}", "{env.INCODE_ADMIN_PASSWORD}", "{env.HOOK_CLIENT_SECRET}", "{env.IDV_WEBHOOK_SECRET}")
}

// TestSecretsStayPlaceholders: {env.*} values are resolved when the handler
// starts, so the adapted JSON (and the admin API's /config) never hold them.
func TestSecretsStayPlaceholders(t *testing.T) {
	t.Setenv("INCODE_API_KEY", "real-secret-key-123")
	in, _ := os.ReadFile("testdata/incode_full.caddyfile")
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("real-secret-key-123")) || !bytes.Contains(out, []byte("{env.INCODE_API_KEY}")) {
		t.Fatalf("the secret reached the JSON config: %s", out)
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`idv`, "provider block"},
		{"idv {\n prefix\n}", "wrong argument count"},
		{"idv {\n prefix /a /b\n incode {\n api_key k\n }\n}", "wrong argument count"},
		{"idv {\n nonsense {\n }\n}", `idv: unknown option "nonsense"; valid options: cors_origins, incode, `},
		// a typo names itself and the closest option, wherever it is
		{"idv {\n incode {\n api_key k\n }\n sesion_ttl 24h\n}", `idv: unknown option "sesion_ttl": did you mean "session_ttl"?`},
		{"idv {\n incode {\n api_kye k\n }\n}", `incode: unknown option "api_kye": did you mean "api_key"?`},
		{"idv {\n incode {\n bogus x\n }\n}", `unknown option "bogus"`},
		{"idv {\n incode {\n api_key k\n }\n incode {\n api_key k\n }\n}", "only one provider per idv block"},
		{"idv {\n incode {\n api_key k\n }\n webhook_auth hmac x\n}", "webhook_auth"},
		{"idv {\n incode {\n api_key k\n }\n session_quota 0 1m\n}", "session_quota"},
		{"idv {\n incode {\n api_key k\n }\n timeout soon\n}", "timeout"},
		{"idv {\n incode {\n api_key k\n }\n max_upload lots\n}", "max_upload"},
		{"idv {\n incode {\n api_key k\n }\n max_upload 0\n}", "max_upload"},
	} {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8080 {\n"+tc.body+"\n}\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, tc.want)
		}
	}
}
