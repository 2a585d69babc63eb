#!/usr/bin/env bash
# Builds a custom Caddy with caddy-idv from this checkout, using xcaddy.
# Extra arguments are passed to xcaddy, e.g. more plugins:
#   ./xcaddy.sh --with github.com/mholt/caddy-ratelimit
# Needs xcaddy (go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest).
# Without xcaddy, `go build ./cmd/caddy` builds the same binary from this repo.
set -euo pipefail
repo="$(cd "$(dirname "$0")" && pwd)"
CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
exec xcaddy build "$CADDY_VERSION" \
	--output "${OUTPUT:-$repo/caddy}" \
	--with "github.com/caddy-idv/caddy-idv=$repo" \
	"$@"
