package regula_test

import (
	"os"
	"testing"

	_ "github.com/caddy-idv/caddy-idv" // the idv handler, providers and sandbox

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.MainQuickRefresh(m)) }
