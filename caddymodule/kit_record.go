package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// recordPush is the provider.Recorder of the handler: the kit's recording
// (recordKit) for events a provider route received itself, creating their
// session under the storage lock when there is none.
func (h *Handler) recordPush(ctx context.Context, evs []provider.KitEvent, create *session.Session) (*session.Session, bool, error) {
	if len(evs) == 0 {
		return nil, false, errors.New("idv: nothing to record")
	}
	s, err := h.store.LoadByRef(ctx, evs[0].Ref)
	switch {
	case err == nil:
		if s.Provider != h.name {
			return nil, false, provider.ErrOtherProvider
		}
		return h.recordKit(ctx, s.UniqueID, evs, true, nil)
	case !errors.Is(err, session.ErrNotFound) || create == nil:
		return nil, false, err
	}
	c := *create
	c.Ref = evs[0].Ref
	if c.Provider == "" {
		c.Provider = h.name
	}
	now := h.host.Now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = now.Add(time.Duration(h.SessionTTL))
	}
	return h.recordKit(ctx, c.UniqueID, evs, true, &c)
}
