package provider

import (
	"context"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// WebhookEffector is implemented by kit providers whose webhook events need
// the provider's API between the session's load and the event's record:
// reading what an event means (a score the payload does not carry), or
// acting on it once (approving an identity). The core calls WebhookEffect
// for each event ParseWebhook returned, then records what it left.
type WebhookEffector interface {
	// WebhookEffect may complete e.Event, mark it a duplicate, run side
	// effects (once each, through e.Once) and set the delivery's answer. An
	// error is answered as is (a *Error; anything else is a 500) and the
	// event is not recorded.
	WebhookEffect(ctx context.Context, e *EventEffect) error
}

// EventEffect is one event of a webhook delivery on its way to its record.
type EventEffect struct {
	// Route is the path of the webhook route called (e.g. "/webhook").
	Route string
	// Session is the stored session the event's Ref names, read only; nil
	// when none is stored (the event is then not recorded, but an effect
	// may still act on the provider's side).
	Session *session.Session
	// Event is what the core records; the effect may complete it (Key,
	// Status, Score, Result, Decision). An empty Key records nothing.
	Event KitEvent
	// Duplicate marks a delivery the effect recognised as already handled:
	// nothing is recorded and it is counted as deduplicated.
	Duplicate bool
	// Answer, when not nil, is the delivery's 200 answer (instead of the
	// WebhookAnswerer's, or {"success":true}).
	Answer any
	// Once takes the one-time right to the side effect name for the
	// event's Ref, under the storage lock and across every instance sharing
	// the storage: false when another delivery holds or has used it. Call
	// release when the side effect did not happen, so a retry can claim it;
	// claims expire after ttl.
	Once func(name string, ttl time.Duration) (ok bool, release func(), err error)
}

// WebhookAnswerer is implemented by kit providers whose webhooks expect an
// acknowledgement of their own shape (an echo of the payload, say) instead
// of {"success":true}. It is not called when an effect set the answer.
type WebhookAnswerer interface {
	// WebhookAnswer is the 200 answer of a delivery of body to route.
	WebhookAnswer(route string, body []byte) any
}
