package provider

import (
	"context"
	"net/http"
	"time"
)

// UserToken routes (GET) answer {"token","expiresAt"} for the user a request
// names, from the provider's UserTokener: for token servers whose provider
// issues a token per end user rather than per session. The core caches each
// user's token until shortly before it expires, fetches it once for
// concurrent requests, and counts each fetch against the client's session
// quota (a provider call for a new user, as a session start is); cached
// answers do not count. The core treats them as CreatesSession TokenServer
// routes (cross-site requests refused).
const UserToken Kind = 24

// UserTokener is implemented by providers with UserToken routes.
type UserTokener interface {
	// TokenUser names the user r asks a token for: a key of the provider's
	// own (a digest, say; never logged nor answered), or a *Error (400)
	// saying what the request lacks.
	TokenUser(r *http.Request) (user string, err error)
	// UserToken fetches a token for user from the provider's API and says
	// when it expires. A *Error is answered as is.
	UserToken(ctx context.Context, user string) (token string, expiresAt time.Time, err error)
}

// UserTokenAnswerer is implemented by UserTokener providers whose answer
// carries more fields (the remaining lifetime in the provider's own format,
// say) besides "token" and "expiresAt".
type UserTokenAnswerer interface {
	// UserTokenAnswer adds fields to answer for a token that expires at
	// expiresAt.
	UserTokenAnswer(expiresAt time.Time, answer map[string]any)
}
