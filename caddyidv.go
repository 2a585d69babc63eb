// Package caddyidv registers every caddy-idv module: the idv handler, the
// idv_sandbox emulator and the providers. Import it (or build with
// xcaddy --with github.com/caddy-idv/caddy-idv) to get them all.
//
// A new provider is a package beside the others under caddymodule/, added
// to the import list below: the one place outside its own package.
package caddyidv

import (
	_ "github.com/caddy-idv/caddy-idv/caddymodule"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/focalx"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/incode"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/onfido"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/redisstorage"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/regula"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/sumsub"
	_ "github.com/caddy-idv/caddy-idv/caddymodule/veriff"
)
