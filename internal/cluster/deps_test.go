package cluster

// The packages of ./cmd/caddy, imported so that `go test` compiles them
// (with this test's flags, -race included) before the test runs: its
// `go build ./cmd/caddy` then finds them in the build cache and only
// compiles main and links, even on a fresh CI machine.
import (
	_ "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv"
)
