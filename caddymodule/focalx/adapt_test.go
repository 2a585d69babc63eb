package focalx_test

import (
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestAdapt: testdata/*.caddyfile adapt to the JSON beside them, and the
// secrets stay placeholders (go test ./caddymodule/focalx/ -run TestAdapt -update).
func TestAdapt(t *testing.T) {
	testcaddy.Golden(t, "{env.FOCALX_CLIENT_SECRET}", "{env.FOCALX_ENCRYPTION_KEY}", "{env.FOCALX_REPORT_KEY}")
}
