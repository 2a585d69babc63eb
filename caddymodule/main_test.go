package caddymodule_test

import (
	"os"
	"testing"

	_ "github.com/caddy-idv/caddy-idv/caddymodule/incode"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.Main(m)) }
