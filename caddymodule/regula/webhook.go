package regula

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
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
// session only; WebhookEffect reads what it is.
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

// WebhookEffect implements provider.WebhookEffector: for a session this
// handler stores, the status is read from the results API with the API key,
// never taken from the payload: a webhook says that something changed, the
// provider says what (and a failed read is a 502 the sender retries). A
// delivery for another backend's session costs no read.
func (p *Regula) WebhookEffect(ctx context.Context, e *provider.EventEffect) error {
	if e.Session == nil {
		return nil
	}
	status, err := p.readStatus(ctx, e.Session.Ref)
	if err != nil {
		return upstream.ClientError(err)
	}
	p.host.Logger.Info("session status", zap.String("sessionId", e.Session.Ref), zap.String("status", StatusName(status)))
	e.Event = eventOf(e.Session.Ref, status)
	return nil
}

// WebhookAnswer implements provider.WebhookAnswerer: the acknowledgement
// echoes the notification.
func (p *Regula) WebhookAnswer(_ string, body []byte) any {
	var data map[string]any
	_ = json.Unmarshal(body, &data) // ParseWebhook decoded it
	return map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339), "success": true, "data": data}
}
