package focalx_test

import (
	"os"
	"testing"

	_ "github.com/caddy-idv/caddy-idv/caddymodule"         // the idv handler
	_ "github.com/caddy-idv/caddy-idv/caddymodule/sandbox" // idv_sandbox

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.Main(m)) }
