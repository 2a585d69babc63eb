package provider

import (
	"context"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// WebhookResolver is implemented by SignedWebhook providers whose webhooks
// only say that a session changed: what changed is read from the provider's
// API, never taken from the payload. The core calls ResolveWebhook for each
// parsed event of a session it stores (a delivery for another backend's
// session is acknowledged without a call) and records the event returned,
// keyed as the provider keys it. An error is answered as the provider's
// failure (502, 504), so the sender retries.
type WebhookResolver interface {
	ResolveWebhook(ctx context.Context, s *session.Session, ev KitEvent) (KitEvent, error)
}

// WebhookAnswerer is implemented by SignedWebhook providers whose senders
// are answered more than the kit's {"success":true}. body is the delivery
// ParseWebhook accepted.
type WebhookAnswerer interface {
	WebhookAnswer(body []byte) map[string]any
}
