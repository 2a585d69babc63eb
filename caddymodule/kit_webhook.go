package caddymodule

import (
	"context"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// resolveKit has a provider.WebhookResolver read the events of a delivery
// for the stored session s from its API; other providers' events are
// recorded as parsed.
func (h *Handler) resolveKit(ctx context.Context, s *session.Session, evs []provider.KitEvent) ([]provider.KitEvent, error) {
	wr, ok := h.provider.(provider.WebhookResolver)
	if !ok {
		return evs, nil
	}
	out := make([]provider.KitEvent, 0, len(evs))
	for _, ev := range evs {
		rev, err := wr.ResolveWebhook(ctx, s, ev)
		if err != nil {
			return nil, upstream.ClientError(err)
		}
		rev.Ref = s.Ref
		out = append(out, rev)
	}
	return out, nil
}

// kitWebhookAnswer is the answer to an accepted delivery.
func (h *Handler) kitWebhookAnswer(body []byte) map[string]any {
	if wa, ok := h.provider.(provider.WebhookAnswerer); ok {
		return wa.WebhookAnswer(body)
	}
	return map[string]any{"success": true}
}
