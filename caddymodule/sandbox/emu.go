package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Small helpers every emulator needs, written once.

// RandomHex returns n random bytes in hex: ids, codes and link tokens.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Origin is the sandbox's address as the request reached it.
func Origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// PublicURL is the configured public address (public_url) without its
// trailing slash, or else the request's Origin.
func PublicURL(configured string, r *http.Request) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	return Origin(r)
}

// Resolve replaces the global placeholders ({env.X}) in each field, once at
// provision; trim also drops surrounding spaces.
func Resolve(trim bool, fields ...*string) {
	repl := caddy.NewReplacer()
	for _, f := range fields {
		*f = repl.ReplaceAll(*f, "")
		if trim {
			*f = strings.TrimSpace(*f)
		}
	}
}

// Fields are the webhook settings that may hold placeholders, for Resolve.
func (wh *Webhooks) Fields() []*string {
	return []*string{&wh.URL, &wh.A, &wh.B, &wh.TokenURL}
}

// OutcomeForm serves the hosted outcome page: on GET it writes the page
// (posting to action) and returns ""; on a POST it returns the outcome
// chosen, or answers 400 and returns "" when it is none of outcomes.
func OutcomeForm(w http.ResponseWriter, r *http.Request, title, action string, outcomes []Outcome) string {
	if r.Method == http.MethodGet {
		WriteOutcomePage(w, title, action, outcomes)
		return ""
	}
	outcome := ReadOutcome(r, outcomes)
	if outcome == "" {
		http.Error(w, "Choose one of the outcomes.", http.StatusBadRequest)
	}
	return outcome
}

// Credential classifies a credential as given (got) against the one the
// emulated account accepts, in constant time: CredNone, CredAPIKey or
// CredInvalid.
func Credential(got, want string) string {
	switch {
	case got == "":
		return CredNone
	case subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1:
		return CredAPIKey
	}
	return CredInvalid
}
