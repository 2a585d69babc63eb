package sumsub_test

import (
	"flag"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/sumsub/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.AdaptGolden(t, *update, "{env.SUMSUB_APP_TOKEN}", "{env.SUMSUB_SECRET_KEY}", "{env.SUMSUB_WEBHOOK_SECRET}")
}
