package caddymodule

// The kit's webhook effects (provider/kit_effects.go): what a provider does
// with an event between its session's load and its record, and the answer
// a provider's webhooks expect.

import (
	"context"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// kitEffects runs the provider's WebhookEffect (if it has one) on the
// events evs of the provider session ref, whose stored session is s (nil
// when none is), and returns the events left to record. An effect's answer
// replaces *answer.
func (h *Handler) kitEffects(ctx context.Context, route, ref string, s *session.Session, evs []provider.KitEvent, answer *any) ([]provider.KitEvent, error) {
	fx, ok := h.provider.(provider.WebhookEffector)
	if !ok {
		return evs, nil
	}
	once := func(name string, ttl time.Duration) (bool, func(), error) { return h.claim(ctx, ref, name, ttl) }
	var keep []provider.KitEvent
	for _, ev := range evs {
		e := &provider.EventEffect{Route: route, Session: s, Event: ev, Once: once}
		if err := fx.WebhookEffect(ctx, e); err != nil {
			return nil, err
		}
		if e.Answer != nil {
			*answer = e.Answer
		}
		switch {
		case e.Duplicate:
			h.count(provider.CountWebhooks, "deduplicated")
		case e.Event.Key != "":
			e.Event.Ref = ref
			keep = append(keep, e.Event)
		}
	}
	return keep, nil
}

// kitAnswer is a webhook delivery's 200 answer when no effect set one.
func (h *Handler) kitAnswer(route string, body []byte) any {
	if a, ok := h.provider.(provider.WebhookAnswerer); ok {
		return a.WebhookAnswer(route, body)
	}
	return map[string]any{"success": true}
}
