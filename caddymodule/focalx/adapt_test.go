package focalx_test

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

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAdapt adapts each testdata/*.caddyfile and compares the JSON with the
// .json beside it (go test -run TestAdapt -update rewrites them).
func TestAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no testdata/*.caddyfile")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(file, ".caddyfile") + ".json"
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
				t.Errorf("%s differs from %s:\n%s", file, golden, pretty.String())
			}
			// Secrets stay placeholders: the JSON config never holds them.
			for _, p := range []string{"{env.FOCALX_CLIENT_SECRET}", "{env.FOCALX_ENCRYPTION_KEY}"} {
				if bytes.Contains(src, []byte(p)) && !bytes.Contains(out, []byte(p)) {
					t.Errorf("%s was resolved at adapt time", p)
				}
			}
		})
	}
}
