// Command caddy is Caddy with its standard modules and caddy-idv's, built
// the way Caddy's own cmd/caddy/main.go is. Once `caddy run` serves, it
// prints the URL to open and which provider each idv prefix talks to (the
// sandbox or a real API).
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// the standard modules
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// caddy-idv: the idv handler, the providers and the sandbox
	_ "github.com/caddy-idv/caddy-idv"
	"github.com/caddy-idv/caddy-idv/caddymodule"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		go announce()
	}
	caddycmd.Main()
}

// announce waits for the first configuration to be running (Caddy sets the
// active context only once its apps have started) and prints the summary.
// Caddy offers no start-up hook to a main package, hence the short poll.
func announce() {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx := caddy.ActiveContext()
		if ctx.Context == nil {
			continue
		}
		if msg := caddymodule.StartupMessage(caddymodule.Summaries(ctx)); msg != "" {
			fmt.Fprint(os.Stderr, "\n"+msg+"\n")
		}
		return
	}
}
