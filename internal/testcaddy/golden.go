package testcaddy

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

// Golden is AdaptGolden with the test binary's -update flag (Main defines
// it when the package does not).
func Golden(t *testing.T, placeholders ...string) {
	t.Helper()
	f := flag.Lookup("update")
	AdaptGolden(t, f != nil && f.Value.String() == "true", placeholders...)
}

// AdaptGolden adapts every testdata/*.caddyfile of the calling package and
// compares the indented JSON with the .json beside it; with update it
// rewrites the golden files first. The adapted JSON is the contract of the
// Caddyfile syntax (the pattern of caddy-l4's adapt tests). Every
// placeholder listed that appears in a source must survive adaptation:
// secrets are resolved when the handler starts, never into the JSON.
func AdaptGolden(t *testing.T, update bool, placeholders ...string) {
	t.Helper()
	files, _ := filepath.Glob("testdata/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddyfile")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				if !strings.Contains(w.Message, "not formatted") {
					t.Errorf("warning: %s", w)
				}
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update after the package path to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("%s adapts to JSON that differs from %s:\n%s", f, golden, pretty.String())
			}
			for _, p := range placeholders {
				if bytes.Contains(src, []byte(p)) && !bytes.Contains(out, []byte(p)) {
					t.Errorf("%s was resolved at adapt time: a secret would reach the JSON config", p)
				}
			}
		})
	}
}
