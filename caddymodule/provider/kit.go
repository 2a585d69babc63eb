package provider

// The kit: what a provider implements when the core owns the browser- and
// webhook-facing logic. A kit provider declares routes of the kinds below
// with a nil Handle; the core serves them by calling the provider's methods,
// so the provider package holds only what talks to its API.
//
//	StartSession  resume by uniqueId, the cookie's session, ?new=1, quota,
//	              cross-site check, Start, store, cookie, JSON answer
//	SessionToken  GET: a fresh token for the caller's session (401 without one)
//	SignedWebhook authenticate, parse, record once per event key, notify

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// Route kinds served by the core for kit providers. They are declared with a
// nil Route.Handle; the core fills it in.
const (
	// StartSession routes start or resume a session with the provider's
	// Starter (GET reads the query; POST reads a JSON body, which wins).
	// The core treats them as CreatesSession.
	StartSession Kind = 16 + iota
	// SessionToken routes answer {"token","expiresAt"} for the session of
	// the caller's cookie, from the provider's TokenRefresher, cached until
	// shortly before the token expires.
	SessionToken
	// SignedWebhook routes take the provider's webhooks through the core's
	// pipeline: the provider's WebhookVerifier (or webhook_auth when it has
	// none), its WebhookParser, then one recorded event per event key.
	SignedWebhook
)

// StartInput is the validated input of a start route, read by the core.
type StartInput struct {
	// Route is the path of the route called (e.g. "/start" or
	// "/onboarding-url"), for providers whose routes differ in what they do.
	Route string
	// UniqueID is the id of the session being created (it is not stored
	// yet); providers may send it to the API as their own reference.
	UniqueID string
	// ExternalUserID is the caller's id for the end user (externalUserId),
	// at most 256 characters, no control characters; may be empty.
	ExternalUserID string
	// FirstName and LastName (firstName, lastName): same limits; may be
	// empty.
	FirstName, LastName string
	// Language (language) is a BCP 47 tag such as "en" or "pt-BR"; may be
	// empty.
	Language string
	// RedirectURL (redirectionUrl) is where the provider's hosted flow
	// should send the user back; the core has checked it against the site's
	// origin or redirect_origins. May be empty.
	RedirectURL string
	// Origin is the site's origin as the browser reached it
	// (scheme://host[:port]).
	Origin string
	// Params holds every parameter of the request, for a provider's own
	// fields (validate them in Start; a *Error is answered as is): the
	// query, and for a POST the JSON body's string fields, which win.
	Params url.Values
}

// StartResult is what a provider's Start created.
type StartResult struct {
	// Ref is the provider's id of the session (required): webhooks and
	// refreshes find the session with it.
	Ref string
	// Token is the session's credential for the browser (an SDK token),
	// if any; TokenExpiresAt is when it expires (zero: unknown). It seeds
	// the SessionToken route's cache.
	Token          string
	TokenExpiresAt time.Time
	// URL is the hosted flow's URL, if any.
	URL string
	// Meta is stored with the session (never secrets).
	Meta map[string]string
	// ExpiresAt, when set, caps the session's lifetime (session_ttl
	// otherwise), e.g. when the provider's session lives less.
	ExpiresAt time.Time
}

// Starter is implemented by providers with StartSession routes.
type Starter interface {
	// Start creates a session at the provider. It is called only when a
	// new session must be created, after the quota allowed it. An error with
	// a StartResult whose Ref is set means the provider session exists but
	// a later step failed: the core stores and binds it (a retry resumes it
	// instead of paying for another), then answers the error.
	Start(ctx context.Context, in StartInput) (StartResult, error)
	// StartAnswer returns the fields answered for s on route (besides
	// "uniqueId", which the core always sets). Never put secrets in it; the
	// session's Token is the browser's own credential.
	StartAnswer(route string, s *session.Session) map[string]any
}

// StartResumer is implemented by Starter providers whose start routes
// complete a session they did not create (a session started on one route
// and resumed on another that answers more, say a hosted-flow URL).
type StartResumer interface {
	// ResumeStart is called for a stored session a start route answers
	// without creating it (by uniqueId or cookie), before StartAnswer. It
	// may fill s's URL, Token or Meta and report changed: the core stores
	// those fields under the session's lock before answering.
	ResumeStart(ctx context.Context, route string, s *session.Session) (changed bool, err error)
}

// TokenRefresher is implemented by providers with SessionToken routes.
type TokenRefresher interface {
	// RefreshToken mints a fresh browser token for s and says when it
	// expires (a zero time means it is not cached).
	RefreshToken(ctx context.Context, s *session.Session) (token string, expiresAt time.Time, err error)
}

// ErrNoWebhookSecret is returned by VerifyWebhook when the provider has no
// webhook secret configured: the core answers 403 (fail closed).
var ErrNoWebhookSecret = errors.New("no webhook secret is configured")

// WebhookVerifier is implemented by providers that sign their webhooks.
type WebhookVerifier interface {
	// VerifyWebhook authenticates one delivery from its headers and raw
	// body: ErrNoWebhookSecret (403) when no secret is configured, any other
	// error (401) when the signature is missing or wrong. Compare in
	// constant time; never put the secret or the signature in the error.
	VerifyWebhook(header http.Header, body []byte) error
}

// WebhookParser is implemented by providers with SignedWebhook routes.
type WebhookParser interface {
	// ParseWebhook turns an authenticated delivery into events. A *Error
	// is answered as is (400 for a malformed body); no events is fine (a
	// notification the core has nothing to record for).
	ParseWebhook(header http.Header, body []byte) ([]KitEvent, error)
}

// KitEvent is a provider event as the kit's pipeline records it.
type KitEvent struct {
	// Event is the session's reference, the delivery key (a replayed
	// delivery has the same Key and is recorded once), the provider's
	// status and the result (Result* or empty).
	Event
	// At is the provider's time of the event (decisionTime, say); zero when
	// the provider gives none.
	At time.Time
	// Decision marks an event that decides the session's result (its
	// Result, even an empty one, replaces the session's). A decision older
	// than the one the session holds (by At), and any event that is not a
	// decision once the session has a result, is kept in the history but
	// changes neither status nor result.
	Decision bool
}

// EventRefresher is implemented by providers that can read a session's
// outcome from their API (useful where webhooks are not published or not
// configured). The core calls it from GET <prefix>/session and the event
// stream while the session has no result, at most once per RefreshEvery
// per session, and records what it read by the same rules as webhooks.
type EventRefresher interface {
	// RefreshEvent returns the session's current state as an event whose
	// Key identifies that state (so an unchanged state is recorded once),
	// with its time and whether it decides the result; an empty Key means
	// nothing new.
	RefreshEvent(ctx context.Context, s *session.Session) (KitEvent, error)
}

// SessionOwner is implemented by kit providers that bind a session to a
// user the request names (a trusted header, say): the core resumes a
// session, or serves its token, only to a request that owns it, so one
// browser shared by two users never hands the second the first's session.
type SessionOwner interface {
	// OwnsSession reports whether r may use s.
	OwnsSession(r *http.Request, s *session.Session) bool
}
