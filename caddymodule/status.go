package caddymodule

import (
	"errors"
	"net/http"
	"time"

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
		// WARN with the reason: a refused webhook is a session that never
		// gets its result, and the fix is in the provider's console.
		reason := "credentials missing"
		if hd := h.WebhookAuth.Name; (h.WebhookAuth.Method == webhookauth.Header && r.Header.Get(provider.Resolve(hd)) != "") ||
			(h.WebhookAuth.Method != webhookauth.Header && r.Header.Get("Authorization") != "") {
			reason = "credentials wrong"
		}
		h.logger.Warn("webhook refused: wrong or missing credentials", zap.String("path", r.URL.Path), zap.String("method", h.WebhookAuth.Method),
			zap.String("reason", reason), zap.String("check", "the webhook secret configured at the provider matches webhook_auth"))
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
	s = h.refresh(r.Context(), s)
	provider.WriteJSON(w, http.StatusOK, viewOf(s))
	return nil
}
