package regula

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Notification is the webhook body POST <prefix>/webhook accepts. Regula
// does not publish its webhook format, so this is caddy-idv's own shape
// (the sandbox sends it): the session id and, optionally, its status. When
// the status is missing it is read from the results API, so any
// notification that names the session is enough.
type Notification struct {
	SessionID string `json:"sessionId"`
	Status    *int   `json:"status,omitempty"`
}

func (p *Regula) serveWebhook(w http.ResponseWriter, r *http.Request) error {
	var data map[string]any
	if err := provider.DecodeJSON(r, &data, true); err != nil {
		return err
	}
	var n Notification
	raw, _ := json.Marshal(data)
	if err := json.Unmarshal(raw, &n); err != nil {
		return provider.Errorf(http.StatusBadRequest, "sessionId must be a string and status an integer")
	}
	if err := provider.RequireString("sessionId", n.SessionID); err != nil {
		return err
	}
	if !sessionIDRe.MatchString(n.SessionID) { // never a Regula id: refuse before it reaches a log
		return provider.Errorf(http.StatusBadRequest, "malformed sessionId")
	}
	ctx := context.WithoutCancel(r.Context())
	_, err := p.host.Sessions.LoadByRef(ctx, n.SessionID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		// A session started elsewhere (the dashboard, another backend):
		// acknowledged, so the sender does not retry it.
		p.host.Logger.Info("webhook for a session with no stored session", zap.String("sessionId", n.SessionID))
	case err != nil:
		return err
	default:
		// The status is read from the results API with the API key, never
		// taken from the payload: a webhook says that something changed,
		// the provider says what (and a failed read is retried by the sender).
		status, err := p.readStatus(ctx, n.SessionID)
		if err != nil {
			return upstream.ClientError(err)
		}
		if _, _, err := p.host.Record(ctx, eventOf(n.SessionID, status)); err != nil {
			return err
		}
		p.host.Logger.Info("session status", zap.String("sessionId", n.SessionID), zap.String("status", StatusName(status)))
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": time.Now().UTC().Format(time.RFC3339), "success": true, "data": data})
	return nil
}
