package onfido_test

import (
	"flag"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/onfido/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.AdaptGolden(t, *update, "{env.ONFIDO_API_TOKEN}", "{env.ONFIDO_WEBHOOK_TOKEN}", "{env.ONFIDO_PREVIOUS_WEBHOOK_TOKEN}")
}
