package focalx_test

import (
	"flag"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/focalx/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.AdaptGolden(t, *update, "{env.FOCALX_CLIENT_SECRET}", "{env.FOCALX_ENCRYPTION_KEY}", "{env.FOCALX_REPORT_KEY}")
}
