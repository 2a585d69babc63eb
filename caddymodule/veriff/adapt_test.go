package veriff_test

import (
	"flag"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/veriff/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.AdaptGolden(t, *update, "{env.VERIFF_API_KEY}", "{env.VERIFF_SHARED_SECRET}", "{env.VERIFF_PREVIOUS_SECRET}")
}
