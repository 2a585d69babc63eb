package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files in testdata")

// TestAdaptGolden adapts every testdata/*.caddyfile and compares the JSON
// with the golden file beside it (go test -run TestAdaptGolden -update
// rewrites them). The JSON is the contract of the Caddyfile syntax.
func TestAdaptGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
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
		{"idv {\n nonsense {\n }\n}", `unknown idv option or provider "nonsense"`},
		{"idv {\n incode {\n bogus x\n }\n}", `unknown option "bogus"`},
		{"idv {\n incode {\n api_key k\n }\n incode {\n api_key k\n }\n}", "only one provider per idv block"},
		{"idv {\n incode {\n api_key k\n }\n webhook_auth hmac x\n}", "webhook_auth"},
		{"idv {\n incode {\n api_key k\n }\n session_quota 0 1m\n}", "session_quota"},
		{"idv {\n incode {\n api_key k\n }\n timeout soon\n}", "timeout"},
	} {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8080 {\n"+tc.body+"\n}\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, tc.want)
		}
	}
}
