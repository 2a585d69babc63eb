package onfido_test

import (
	"os"
	"testing"
	"time"

	_ "github.com/caddy-idv/caddy-idv" // the idv handler, providers and sandbox

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) {
	// Refreshes are rate limited per session; tests that poll GET
	// /api/session for an outcome need not wait seconds between them.
	provider.RefreshEvery = 100 * time.Millisecond
	os.Exit(testcaddy.Main(m))
}
