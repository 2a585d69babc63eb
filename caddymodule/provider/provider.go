// Package provider is the contract between the idv handler (the core) and
// the identity-verification providers. A provider is a Caddy module in the
// "idv.providers" namespace that declares its routes; the core matches
// requests to them and gives the provider a Host: storage, token cache, HTTP
// client, and the browser-facing rules (cookies, quotas, redirects).
//
// Adding a provider means writing a new package beside the others (see
// kit.go and docs/kit.md), and importing it where the binary is assembled.
package provider

import (
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/tokencache"
)

// Kind says which rules the core applies to a route before calling it.
type Kind int

const (
	// TokenServer routes take small JSON or query input (bodies are limited
	// to 1 MiB) and create or read sessions.
	TokenServer Kind = iota
	// Passthrough routes stream any body to the provider.
	Passthrough
	// Webhook routes are called by the provider's servers; they need
	// webhook authentication and are exempt from browser checks.
	Webhook
)

// Route is one path under the handler's prefix.
type Route struct {
	// Path is relative to the prefix, e.g. "/start". With Subtree, it ends in
	// "/" and matches every path below it.
	Path    string
	Subtree bool
	// Methods allowed; empty means any.
	Methods []string
	Kind    Kind
	// CreatesSession marks routes that may start a billable provider
	// session: the core refuses cross-site browser requests to them.
	CreatesSession bool
	// Handle serves the request. Errors are written as JSON by the core:
	// *Error as given, anything else as 500.
	Handle func(w http.ResponseWriter, r *http.Request) error
	// Forward declares a Passthrough route the core serves (Handle nil).
	Forward *Forward
	// ClientHeaders are request headers a browser sends on this route
	// beyond Content-Type and X-IDV: a listed origin's preflight allows
	// them.
	ClientHeaders []string
	// CredentialHeaders are request headers carrying a credential on this
	// route (a key, a token, a signature): their values never reach an
	// access log line.
	CredentialHeaders []string
}

// Provider is what a provider module implements besides caddy.Module.
type Provider interface {
	// ProvisionIDV is called once the core has provisioned, with the
	// services the provider uses. It replaces caddy.Provisioner for
	// providers.
	ProvisionIDV(ctx caddy.Context, h *Host) error
	// Routes are the provider's routes.
	Routes() []Route
	// Secrets are every configured secret, resolved, for the log redactor.
	Secrets() []string
}

// Event is a provider notification the core records on a session.
type Event struct {
	// Ref is the provider's id of the session (interviewId, sessionId).
	Ref string
	// Key deduplicates deliveries; Status is the provider's status.
	Key, Status string
	// Score, when known, is stored too.
	Score string
	// Result is ResultVerified, ResultFailed, ResultReview or empty.
	Result string
}

// Provider-neutral outcomes of a verification. ResultReview means the
// provider's verdict needs a person (a warning score, a manual review); a
// later event may still turn it into verified or failed.
const (
	ResultVerified = "verified"
	ResultFailed   = "failed"
	ResultReview   = "review"
)

// Host is what the core provides to a provider.
type Host struct {
	Logger *zap.Logger
	// Tokens is shared by every handler with the same prefix and provider
	// configuration (placeholders resolved: the account and credentials are
	// in it), and survives reloads.
	Tokens *tokencache.Cache
	// HTTP is the client for provider calls; Transport is its transport,
	// for passthrough proxies.
	HTTP      *http.Client
	Transport *http.Transport
	// Timeout is the longest a provider call may take.
	Timeout time.Duration
	// Prefix is the handler's path prefix, e.g. "/api".
	Prefix string
	// Now is the clock.
	Now func() time.Time

	// Record records events a provider route received itself (a push the
	// SignedWebhook route cannot serve) by the rules of the kit's webhooks;
	// see Recorder.
	Record Recorder
	// Redact registers a long-lived credential the provider obtained (an
	// executive token, say) so that it never appears in a log line. The
	// registry is never pruned: do not register per-session tokens (the
	// redactor removes anything shaped like a JWT anyway).
	Redact func(secret string)
	// RedactUntil is Redact for a credential that expires: it is pruned
	// from the registry after until, so repeated logins do not grow it.
	RedactUntil func(secret string, until time.Time)
	// Observe is called for every provider call (metrics).
	Observe func(op string, status int, d time.Duration)
	// Count records an event in the metrics, for what the core cannot see
	// itself: kind CountWebhooks with "deduplicated" when a provider
	// recognises a retried delivery before calling Record. (Sessions are
	// counted by BindSession; received and rejected webhooks by the core.)
	Count func(kind, outcome string)
}

// Metric kinds for Host.Count.
const (
	CountSessions = "sessions"
	CountWebhooks = "webhooks"
)

// Resolve replaces the global placeholders in a configuration value
// ({env.NAME}, {env.NAME:default}, {file.PATH}, ...) when the handler
// starts, so secrets never sit in the JSON config. Only known placeholders
// are replaced: a secret that happens to contain braces is kept as written.
func Resolve(v string) string { return placeholder.Resolve(v) }

// ParseBaseURL parses an http(s) base URL from the configuration. Its error
// does not quote the value, which may hold credentials.
func ParseBaseURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, Errorf(0, "%s must be an http or https URL with a host, and no user, query or fragment", field)
	}
	return u, nil
}

// Identifier is implemented by providers to name the account their
// configuration talks to (base URL and account or client id; no secret).
// The core keys stored sessions, the token cache and the quota with it, so
// two sites using different accounts under the same prefix never share them.
// Called after ProvisionIDV.
type Identifier interface {
	Identity() string
}

// RefreshEvery bounds how often one session is refreshed from the provider.
var RefreshEvery = 3 * time.Second
