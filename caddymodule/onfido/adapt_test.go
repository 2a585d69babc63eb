package onfido_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/onfido/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.Golden(t, "{env.ONFIDO_API_TOKEN}", "{env.ONFIDO_WEBHOOK_TOKEN}", "{env.ONFIDO_PREVIOUS_WEBHOOK_TOKEN}")
}

// TestDocsAdapt: every caddyfile block of docs/providers/onfido.md adapts
// (a fragment is placed in a site, or in a sandbox site).
func TestDocsAdapt(t *testing.T) {
	src, err := os.ReadFile("../../docs/providers/onfido.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(src), -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d caddyfile blocks", len(blocks))
	}
	for _, b := range blocks {
		// Placeholders written <like this> stand for values.
		body := regexp.MustCompile(`<[a-z ]+>`).ReplaceAllString(b[1], "x")
		body = strings.ReplaceAll(body, "workflow_id   x", "workflow_id   6f3a2b1c-0d4e-4f5a-8b7c-9d0e1f2a3b4c")
		cfg := "http://:8080 {\n" + body + "}\n"
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "onfido.md"}); err != nil {
			t.Errorf("%v:\n%s", err, b[1])
		}
	}
}
