#!/usr/bin/env bash
# Builds Caddy with caddy-idv from this checkout, with xcaddy, so that other
# plugins can be added: extra arguments go to `xcaddy build`, e.g.
#
#	./xcaddy.sh --with github.com/mholt/caddy-ratelimit
#
# Installs xcaddy (a pinned version, with `go install`) when it is missing.
# The Caddy version is the one in go.mod, so the result is the binary that
# `go build ./cmd/caddy` makes, plus what you add. A cold build takes about
# five minutes on two cores.
#
# Environment: OUTPUT (default ./caddy), CADDY_VERSION (default: go.mod's),
# XCADDY_VERSION (default below).
set -euo pipefail
repo="$(cd "$(dirname "$0")" && pwd)"
XCADDY_VERSION="${XCADDY_VERSION:-v0.4.5}"
CADDY_VERSION="${CADDY_VERSION:-$(awk '$1 == "github.com/caddyserver/caddy/v2" { print $2; exit }' "$repo/go.mod")}"

die() { printf 'xcaddy.sh: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/dl/); it is needed to build Caddy."
[ -n "$CADDY_VERSION" ] || die "cannot read Caddy's version from $repo/go.mod; set CADDY_VERSION (e.g. v2.11.9)."

xcaddy="$(command -v xcaddy || true)"
if [ -z "$xcaddy" ]; then
	bin="$(go env GOBIN)"
	[ -n "$bin" ] || bin="$(go env GOPATH)/bin"
	if [ -x "$bin/xcaddy" ]; then
		xcaddy="$bin/xcaddy"
	else
		echo "xcaddy.sh: xcaddy is not installed: installing github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION into $bin" >&2
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION" ||
			die "could not install xcaddy $XCADDY_VERSION (is the Go module proxy, $(go env GOPROXY), reachable?). Install it yourself (https://github.com/caddyserver/xcaddy#install) or build without it: go build ./cmd/caddy"
		xcaddy="$bin/xcaddy"
	fi
fi

# caddy-idv's module path is not published, so xcaddy cannot fetch it: the
# pseudo-version below is a placeholder that the replacement (=$repo) points
# at this checkout.
echo "xcaddy.sh: building Caddy $CADDY_VERSION with caddy-idv from $repo (a cold build takes minutes)" >&2
exec "$xcaddy" build "$CADDY_VERSION" \
	--output "${OUTPUT:-$repo/caddy}" \
	--with "github.com/caddy-idv/caddy-idv@v0.0.0-00010101000000-000000000000=$repo" \
	"$@"
