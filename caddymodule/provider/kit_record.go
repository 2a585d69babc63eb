package provider

import (
	"context"
	"errors"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// ErrOtherProvider is returned by a Recorder when the event's reference
// names a session of another provider (a storage_namespace shared by two
// handlers): nothing is recorded.
var ErrOtherProvider = errors.New("the reference names another provider's session")

// Recorder records evs, all with one Ref, on their session by the rules of
// SignedWebhook routes: one locked update, a replayed Key recorded once (and
// counted as a deduplicated webhook), the session's streams woken. When no
// session has that Ref and create is not nil, create is stored first under
// the same lock (its Provider, CreatedAt and ExpiresAt, when empty, are the
// handler's, now and session_ttl), so concurrent first deliveries of one
// record all land; give create a UniqueID derived from the Ref and a secret.
// It returns the session and whether an event was new.
type Recorder func(ctx context.Context, evs []KitEvent, create *session.Session) (s *session.Session, isNew bool, err error)

// LogRef is a provider reference as logged: one shaped like a uniqueId (a
// provider naming its applicant with the session's id) resumes a session,
// so only its digest is.
func LogRef(ref string) string {
	if session.ValidID(ref) {
		return session.LogID(ref)
	}
	return ref
}
