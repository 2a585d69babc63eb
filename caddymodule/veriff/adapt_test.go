package veriff_test

import (
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/veriff/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.Golden(t, "{env.VERIFF_API_KEY}", "{env.VERIFF_SHARED_SECRET}", "{env.VERIFF_PREVIOUS_SECRET}")
}
