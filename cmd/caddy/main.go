// Command caddy is Caddy with its standard modules and caddy-idv's, built
// the way Caddy's own cmd/caddy/main.go is.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// the standard modules
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// caddy-idv: the idv handler, the providers and the sandbox
	_ "github.com/caddy-idv/caddy-idv"
)

func main() {
	caddycmd.Main()
}
