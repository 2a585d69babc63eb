package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// StorageRetryAfter is the Retry-After of a 503 caused by a storage outage.
var StorageRetryAfter = 5 * time.Second

// asUnavailable turns a storage failure (session.ErrUnavailable) into the
// 503 the client sees; other errors are returned unchanged.
func asUnavailable(err error) error {
	var pe *provider.Error
	if err == nil || errors.As(err, &pe) || !errors.Is(err, session.ErrUnavailable) {
		return err
	}
	return &provider.Error{Status: http.StatusServiceUnavailable, RetryAfter: StorageRetryAfter,
		Msg: "session storage is unavailable; try again shortly", Err: err}
}

// checkWritable refuses a billable session creation while the session
// store cannot take the session: the provider would bill a session we then
// could not keep. Providers reach it through Host.AllowCreate, which each
// calls right before its billable call.
func (h *Handler) checkWritable(r *http.Request) error {
	w, ok := h.store.(interface{ Writable(context.Context) error })
	if !ok {
		return nil
	}
	return asUnavailable(w.Writable(r.Context()))
}

type cookieLoadKey struct{}

// cookieLoad is the session the cookie named, loaded once per request.
type cookieLoad struct {
	id  string
	s   *session.Session
	err error
}

// preloadCookieSession loads the cookie's session before a route that may
// create a session runs, so that a storage outage answers 503 rather than
// looking like "no session" (which would start, and bill, a new one). The
// provider's SessionFromCookie then reuses what was loaded.
func (h *Handler) preloadCookieSession(r *http.Request) (*http.Request, error) {
	c, err := r.Cookie(Cookie)
	if err != nil || !session.ValidID(c.Value) {
		return r, nil
	}
	s, err := h.store.Load(r.Context(), c.Value)
	if errors.Is(err, session.ErrUnavailable) {
		return r, asUnavailable(err)
	}
	return r.WithContext(context.WithValue(r.Context(), cookieLoadKey{}, &cookieLoad{id: c.Value, s: s, err: err})), nil
}

// loadCookieSession is store.Load for the cookie's id, answered from the
// preload when there was one.
func (h *Handler) loadCookieSession(r *http.Request, id string) (*session.Session, error) {
	if l, ok := r.Context().Value(cookieLoadKey{}).(*cookieLoad); ok && l.id == id {
		return l.s, l.err
	}
	return h.store.Load(r.Context(), id)
}
