package regula

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// Notification is the webhook body POST <prefix>/webhook accepts. Regula
// does not publish its webhook format, so this is caddy-idv's own shape
// (the sandbox sends it): the session id and, optionally, its status. The
// status is read from the results API whatever the payload says, so any
// notification that names the session is enough. Regula signs nothing:
// webhook_auth authenticates the delivery.
type Notification struct {
	SessionID string `json:"sessionId"`
	Status    *int   `json:"status,omitempty"`
}

// ParseWebhook implements provider.WebhookParser: the event names the
// session only; ResolveWebhook reads what it is.
func (p *Regula) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	var data map[string]any
	if err := provider.DecodeJSONBytes(body, &data, true); err != nil {
		return nil, err
	}
	var n Notification
	raw, _ := json.Marshal(data)
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, provider.Errorf(http.StatusBadRequest, "sessionId must be a string and status an integer")
	}
	if err := provider.RequireString("sessionId", n.SessionID); err != nil {
		return nil, err
	}
	if !sessionIDRe.MatchString(n.SessionID) { // never a Regula id: refuse before it reaches a log
		return nil, provider.Errorf(http.StatusBadRequest, "malformed sessionId")
	}
	return []provider.KitEvent{{Event: provider.Event{Ref: n.SessionID}}}, nil
}

// ResolveWebhook implements provider.WebhookResolver: the status is read
// from the results API with the API key, never taken from the payload: a
// webhook says that something changed, the provider says what (and a
// failed read is retried by the sender).
func (p *Regula) ResolveWebhook(ctx context.Context, s *session.Session, _ provider.KitEvent) (provider.KitEvent, error) {
	status, err := p.readStatus(ctx, s.Ref)
	if err != nil {
		return provider.KitEvent{}, err
	}
	p.host.Logger.Info("session status", zap.String("sessionId", s.Ref), zap.String("status", StatusName(status)))
	return eventOf(s.Ref, status), nil
}

// WebhookAnswer implements provider.WebhookAnswerer: the acknowledgement
// echoes the notification.
func (p *Regula) WebhookAnswer(body []byte) map[string]any {
	var data map[string]any
	_ = json.Unmarshal(body, &data) // ParseWebhook decoded it
	return map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339), "success": true, "data": data}
}
