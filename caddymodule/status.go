package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/webhookauth"
)

// coreRoutes are served whatever the provider.
func (h *Handler) coreRoutes() []provider.Route {
	return []provider.Route{
		{Path: "/session", Methods: []string{"GET"}, Handle: h.serveSession},
		{Path: "/session/events", Methods: []string{"GET"}, Handle: h.serveSessionEvents},
		{Path: "/webhook/token", Methods: []string{"POST"}, Handle: h.serveWebhookToken},
	}
}

// authenticateWebhook fails closed: no configured method means 403.
func (h *Handler) authenticateWebhook(r *http.Request) error {
	if h.WebhookAuth == nil {
		h.count(provider.CountWebhooks, "rejected")
		h.logger.Warn("webhook refused: no webhook_auth is configured (use webhook_auth none to accept unauthenticated webhooks)",
			zap.String("path", r.URL.Path))
		return provider.Errorf(http.StatusForbidden, "webhooks are disabled: no webhook_auth is configured")
	}
	if err := h.WebhookAuth.Check(r); err != nil {
		h.count(provider.CountWebhooks, "rejected")
		h.logger.Info("webhook refused: wrong or missing credentials", zap.String("path", r.URL.Path), zap.String("method", h.WebhookAuth.Method))
		return provider.Errorf(http.StatusUnauthorized, "webhook credentials are missing or wrong")
	}
	h.count(provider.CountWebhooks, "received")
	return nil
}

func (h *Handler) serveWebhookToken(w http.ResponseWriter, r *http.Request) error {
	if h.WebhookAuth == nil || h.WebhookAuth.Method != webhookauth.OAuth2 {
		return provider.Errorf(http.StatusNotFound, "webhook_auth oauth2 is not configured")
	}
	body, status, err := h.WebhookAuth.IssueToken(r)
	if err != nil {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="idv webhook"`)
		}
		return provider.Errorf(status, "%v", err)
	}
	provider.WriteJSON(w, http.StatusOK, body)
	return nil
}

// View is what /session answers: the session without its credential.
type View struct {
	Success   bool        `json:"success"`
	UniqueID  string      `json:"uniqueId"`
	Provider  string      `json:"provider"`
	Status    string      `json:"status"`
	Score     string      `json:"score,omitempty"`
	Result    string      `json:"result"`
	Events    []EventView `json:"events"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
	ExpiresAt time.Time   `json:"expiresAt"`
}

// EventView is one recorded event.
type EventView struct {
	Status     string    `json:"status"`
	ReceivedAt time.Time `json:"receivedAt"`
}

func viewOf(s *session.Session) View {
	v := View{Success: true, UniqueID: s.UniqueID, Provider: s.Provider, Status: s.Status, Score: s.Score,
		Result: s.Result, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, ExpiresAt: s.ExpiresAt, Events: []EventView{}}
	if v.Status == "" {
		v.Status = "STARTED"
	}
	if v.Result == "" {
		v.Result = "pending"
	}
	for _, e := range s.Events {
		v.Events = append(v.Events, EventView{Status: e.Status, ReceivedAt: e.ReceivedAt})
	}
	return v
}

func (h *Handler) cookieSession(r *http.Request) (*session.Session, error) {
	c, err := r.Cookie(Cookie)
	if err != nil {
		return nil, provider.Errorf(http.StatusUnauthorized, "no session: call %s/start first", h.Prefix)
	}
	s, err := h.store.Load(r.Context(), c.Value)
	if err != nil {
		if errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrMalformedID) {
			return nil, provider.Errorf(http.StatusUnauthorized, "the session cookie names no live session: %v", err)
		}
		return nil, err
	}
	return s, nil
}

func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request) error {
	s, err := h.cookieSession(r)
	if err != nil {
		return err
	}
	s = h.refresh(r, s)
	provider.WriteJSON(w, http.StatusOK, viewOf(s))
	return nil
}

// refresh asks a Refresher provider for news of a pending session, at most
// once per provider.RefreshEvery per session and process.
func (h *Handler) refresh(r *http.Request, s *session.Session) *session.Session {
	rf, ok := h.provider.(provider.Refresher)
	if !ok || s.Result != "" {
		return s
	}
	key := h.namespace + "/" + s.UniqueID
	if _, recent := refreshed.Get(key); recent {
		return s
	}
	refreshed.Set(key, true, provider.RefreshEvery)
	if er, ok := h.provider.(provider.EventRefresher); ok {
		return h.refreshKit(r, s, er)
	}
	ev, err := rf.Refresh(r.Context(), s)
	if err != nil {
		h.logger.Warn("refreshing session status failed", zap.String("session", session.LogID(s.UniqueID)), zap.String("error", redactErr(err)))
		return s
	}
	if ev.Key == "" {
		return s
	}
	ev.Ref = s.Ref
	if ns, _, err := h.record(r.Context(), ev); err == nil {
		return ns
	}
	return s
}

// refreshed remembers which sessions were refreshed recently.
var refreshed = gocache.New(time.Minute, time.Minute)

// serveSessionEvents streams the session's view as server-sent events: once
// at once, then on every change. Changes made by this process arrive through
// the broker at once; changes made by another instance sharing the storage
// are picked up by a poll.
func (h *Handler) serveSessionEvents(w http.ResponseWriter, r *http.Request) error {
	s, err := h.cookieSession(r)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ch, cancel := subscribe(h.namespace, s.UniqueID)
	defer cancel()
	poll := time.NewTicker(EventPoll)
	defer poll.Stop()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()

	last := time.Time{}
	send := func() error {
		cur, err := h.store.Load(r.Context(), s.UniqueID)
		if err != nil && !errors.Is(err, session.ErrExpired) {
			return err
		}
		cur = h.refresh(r, cur)
		if cur.UpdatedAt.Equal(last) {
			return nil
		}
		last = cur.UpdatedAt
		b, _ := json.Marshal(viewOf(cur))
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(); err != nil {
		return nil
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-ch:
		case <-poll.C:
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
			continue
		}
		if err := send(); err != nil {
			return nil
		}
	}
}

// EventPoll is how often an event stream re-reads its session from storage
// (to see webhooks received by another instance).
var EventPoll = time.Second

// The broker is process-wide, so streams opened under one configuration
// still hear events recorded after a reload.
var broker = struct {
	sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}{subs: map[string]map[chan struct{}]struct{}{}}

func subscribe(ns, id string) (<-chan struct{}, func()) {
	key := ns + "/" + id
	ch := make(chan struct{}, 1)
	broker.Lock()
	if broker.subs[key] == nil {
		broker.subs[key] = map[chan struct{}]struct{}{}
	}
	broker.subs[key][ch] = struct{}{}
	broker.Unlock()
	return ch, func() {
		broker.Lock()
		delete(broker.subs[key], ch)
		if len(broker.subs[key]) == 0 {
			delete(broker.subs, key)
		}
		broker.Unlock()
	}
}

func notify(ns, id string) {
	broker.Lock()
	defer broker.Unlock()
	for ch := range broker.subs[ns+"/"+id] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
