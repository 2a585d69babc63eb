package caddymodule

import (
	"regexp"
)

// jwtLike matches anything shaped like a JWT (or a JWS in general): provider
// tokens and executive tokens are JWTs, and none belongs in a log line.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// redactErr renders an error cause for a log line with token-shaped strings
// removed. Provider-configured secrets never reach errors: the upstream
// client logs error classes only.
func redactErr(err error) string {
	return jwtLike.ReplaceAllString(err.Error(), "[REDACTED]")
}
