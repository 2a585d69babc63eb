package sumsub_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/sumsub/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.Golden(t, "{env.SUMSUB_APP_TOKEN}", "{env.SUMSUB_SECRET_KEY}", "{env.SUMSUB_WEBHOOK_SECRET}", "{env.SUMSUB_PREVIOUS_WEBHOOK_SECRET}")
}

// TestDocsAndExampleAdapt: every ```caddyfile block of the docs page, and
// examples/sumsub/Caddyfile, adapt without errors.
func TestDocsAndExampleAdapt(t *testing.T) {
	doc, err := os.ReadFile("../../docs/providers/sumsub.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("%d caddyfile blocks in the docs", len(blocks))
	}
	for i, b := range blocks {
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(b[1], map[string]any{"filename": "docs"}); err != nil {
			t.Errorf("docs block %d: %v", i+1, err)
		}
	}
	src, err := os.ReadFile("../../examples/sumsub/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "../../examples/sumsub/Caddyfile"})
	if err != nil {
		t.Fatalf("example: %v", err)
	}
	for _, want := range []string{`"sumsub"`, `"127.0.0.1:8085"`, `"/sumsub/api"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("example JSON lacks %s", want)
		}
	}
}
