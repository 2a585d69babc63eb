package provider

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Forward declares a Passthrough route the core serves: it checks the path
// once (cleaned, then Rules), finds the session's token, strips the
// browser's credentials and hands the cleaned suffix to Proxy. A provider
// declares it with a nil Route.Handle.
type Forward struct {
	// Rules decide, in order, which paths below the route are forwarded:
	// the first rule matching the method and the path wins, and a request no
	// rule matches is refused with 403 (fail closed).
	Rules []PathRule
	// TokenHeader, when set, is a request header in which the browser may
	// send its session token itself; it wins over the session cookie. It
	// is never forwarded, is allowed in CORS preflights and is redacted
	// from access log lines.
	TokenHeader string
	// SessionParam, when set, is a query parameter naming the session by
	// uniqueId instead of the cookie; it is removed before forwarding.
	SessionParam string
	// Credential returns the headers that carry the session's token to the
	// provider.
	Credential func(token string) http.Header
	// Strip lists more request headers never forwarded (besides the
	// passthrough package's list and TokenHeader).
	Strip []string
	// NoSession is the message of the 401 answered when the request names
	// no live session of the provider.
	NoSession string
	// Proxy forwards the request below the provider's root.
	Proxy Forwarder
}

// Forwarder sends a request to the provider's root + suffix (escaped, already
// checked) with the credential headers, streaming bodies both ways.
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, suffix string, credential http.Header) error
}

// PathRule allows or refuses the paths below a passthrough route.
type PathRule struct {
	// Methods the rule applies to; empty means every method.
	Methods []string
	// NotMethods, when set, makes the rule apply to every method but
	// these (a deny rule stays closed if more methods are ever forwarded).
	NotMethods []string
	// Pattern is matched against the escaped path below the route,
	// segment by segment and without regard to case: a segment is a
	// path.Match pattern ("*" is any one segment, "deeplink*" any segment
	// starting so), and a last segment "**" matches any number of further
	// segments, none included.
	Pattern string
	// Deny refuses what the rule matches, with Reason (403).
	Deny   bool
	Reason string
}

// Match reports whether the rule applies to method and suffix.
func (pr PathRule) Match(method, suffix string) bool {
	if len(pr.Methods) > 0 && !slices.Contains(pr.Methods, method) || slices.Contains(pr.NotMethods, method) {
		return false
	}
	pat := strings.Split(strings.ToLower(pr.Pattern), "/")
	segs := strings.Split(strings.ToLower(suffix), "/")
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return true
		}
		if i >= len(segs) {
			return false
		}
		if ok, err := path.Match(p, segs[i]); err != nil || !ok {
			return false
		}
	}
	return len(segs) == len(pat)
}

// Check reports a pattern that could never match as meant: an empty
// segment, a malformed path.Match segment, or "**" anywhere but last.
// (A malformed deny pattern would otherwise fail open.)
func (pr PathRule) Check() error {
	segs := strings.Split(pr.Pattern, "/")
	for i, seg := range segs {
		if seg == "" {
			return fmt.Errorf("path pattern %q has an empty segment (no leading, trailing or double slash)", pr.Pattern)
		}
		if strings.Contains(seg, "**") && (seg != "**" || i != len(segs)-1) {
			return fmt.Errorf("path pattern %q: ** must be the whole last segment", pr.Pattern)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("path pattern %q is malformed: %v", pr.Pattern, err)
		}
	}
	return nil
}

// Allowed applies rules to a request: nil when the first matching rule
// allows it, a 403 *Error otherwise.
func Allowed(rules []PathRule, method, suffix string) error {
	for _, pr := range rules {
		if !pr.Match(method, suffix) {
			continue
		}
		if !pr.Deny {
			return nil
		}
		if pr.Reason != "" {
			return Errorf(http.StatusForbidden, "%s", pr.Reason)
		}
		break
	}
	return Errorf(http.StatusForbidden, "this path is not forwarded to the provider")
}

// AllowAll is the rule forwarding every path below the route.
var AllowAll = PathRule{Pattern: "**"}
