package incode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Finished is the onboarding status after which scores are final.
const Finished = "ONBOARDING_FINISHED"

// notification is Incode's onboarding-status webhook payload.
type notification struct {
	InterviewID      string `json:"interviewId"`
	OnboardingStatus string `json:"onboardingStatus"`
}

func (p *Incode) readNotification(r *http.Request) (notification, map[string]any, error) {
	var data map[string]any
	if err := provider.DecodeJSON(r, &data, true); err != nil {
		return notification{}, nil, err
	}
	var n notification
	raw, _ := json.Marshal(data)
	if err := json.Unmarshal(raw, &n); err != nil {
		return n, nil, provider.Errorf(http.StatusBadRequest, "interviewId and onboardingStatus must be strings")
	}
	if err := provider.RequireString("interviewId", n.InterviewID); err != nil {
		return n, nil, err
	}
	if err := provider.RequireString("onboardingStatus", n.OnboardingStatus); err != nil {
		return n, nil, err
	}
	return n, data, nil
}

// executiveScore reads an interview's score with the executive token.
func (p *Incode) executiveScore(ctx context.Context, interviewID string) (Score, error) {
	var sc Score
	_, err := p.withExecutive(ctx, upstream.Request{Op: "omni/get/score", Method: http.MethodGet, Path: "/omni/get/score",
		Query: url.Values{"id": {interviewID}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", interviewID)}}, &sc)
	return sc, err
}

func resultOf(status string) string {
	switch status {
	case "OK", "MANUAL_OK":
		return provider.ResultVerified
	case "FAIL", "MANUAL_FAIL":
		return provider.ResultFailed
	}
	return ""
}

// handleNotification records the event once. On ONBOARDING_FINISHED it
// reads the score first, so the session's status and result change together.
// It reports the score (when read) and whether the delivery was a duplicate.
// known, when not nil, is a score the caller already read.
func (p *Incode) handleNotification(ctx context.Context, n notification, known *Score) (score string, duplicate bool, err error) {
	key := n.InterviewID + ":" + n.OnboardingStatus
	stored, lerr := p.host.Sessions.LoadByRef(ctx, n.InterviewID)
	if lerr == nil && stored.HasEvent(key) {
		p.count(provider.CountWebhooks, "deduplicated")
		return stored.Score, true, nil
	}
	ev := provider.Event{Ref: n.InterviewID, Key: key, Status: n.OnboardingStatus}
	// The result comes only from the score the provider gives the executive
	// token, never from the payload: a webhook says that something changed,
	// the provider says what.
	switch n.OnboardingStatus {
	case Finished, "MANUAL_REVIEW_APPROVED", "MANUAL_REVIEW_REJECTED":
		if known != nil || p.email != "" || p.static != "" {
			sc := known
			if sc == nil {
				read, err := p.executiveScore(ctx, n.InterviewID)
				if err != nil {
					return "", false, upstream.ClientError(err)
				}
				sc = &read
			}
			score = sc.Overall.Status
			ev.Score, ev.Result = score, resultOf(score)
			p.host.Logger.Info("onboarding status", zap.String("interviewId", n.InterviewID),
				zap.String("onboardingStatus", n.OnboardingStatus), zap.String("score", score))
		} else {
			p.host.Logger.Warn("no executive credentials are configured to read the score: the result stays unknown",
				zap.String("interviewId", n.InterviewID), zap.String("onboardingStatus", n.OnboardingStatus))
		}
	}
	if lerr == nil {
		_, isNew, err := p.host.Record(ctx, ev)
		if err != nil {
			return score, false, err
		}
		duplicate = !isNew
	} else if errors.Is(lerr, session.ErrNotFound) {
		// A session started elsewhere (the dashboard, another backend).
		p.host.Logger.Info("webhook for an interview with no stored session", zap.String("interviewId", n.InterviewID),
			zap.String("onboardingStatus", n.OnboardingStatus))
	} else {
		return score, false, lerr
	}
	return score, duplicate, nil
}

func timestamp() string { return time.Now().UTC().Format(time.RFC3339) }

func (p *Incode) serveWebhook(w http.ResponseWriter, r *http.Request) error {
	n, data, err := p.readNotification(r)
	if err != nil {
		return err
	}
	if _, _, err := p.handleNotification(context.WithoutCancel(r.Context()), n, nil); err != nil {
		return err
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true, "data": data})
	return nil
}

// serveApprove is the webhook that also approves the identity (creates the
// customer for face login) when the finished onboarding scored OK.
// Refusals are answered 200 with success false: the delivery itself
// succeeded and must not be retried.
func (p *Incode) serveApprove(w http.ResponseWriter, r *http.Request) error {
	n, _, err := p.readNotification(r)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	if n.OnboardingStatus != Finished {
		if _, _, err := p.handleNotification(ctx, n, nil); err != nil {
			return err
		}
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": false,
			"error": fmt.Sprintf("onboardingStatus is %s, not %s: nothing to approve", n.OnboardingStatus, Finished)})
		return nil
	}
	if p.email == "" && p.static == "" {
		return provider.Errorf(http.StatusNotImplemented, "approve needs executive credentials (admin_email and admin_password, or admin_token)")
	}
	// A retried delivery must not approve twice.
	if stored, err := p.host.Sessions.LoadByRef(ctx, n.InterviewID); err == nil && stored.HasEvent(n.InterviewID+":"+n.OnboardingStatus) {
		p.count(provider.CountWebhooks, "deduplicated")
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true,
			"data": map[string]any{"duplicate": true, "score": stored.Score}})
		return nil
	}
	sc, err := p.executiveScore(ctx, n.InterviewID)
	if err != nil {
		return upstream.ClientError(err)
	}
	if sc.Overall.Status != "OK" {
		if _, _, err := p.handleNotification(ctx, n, &sc); err != nil {
			return err
		}
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": false,
			"error": fmt.Sprintf("score is %s, not OK: identity not approved", orUnknown(sc.Overall.Status))})
		return nil
	}
	body, err := p.withExecutive(ctx, upstream.Request{Op: "omni/process/approve", Method: http.MethodPost, Path: "/omni/process/approve",
		Query: url.Values{"interviewId": {n.InterviewID}}, Body: map[string]any{},
		LogFields: []zap.Field{zap.String("interviewId", n.InterviewID)}}, nil)
	if err != nil {
		return upstream.ClientError(err)
	}
	if !json.Valid(body) {
		return upstream.ClientError(upstream.ErrMalformed)
	}
	if _, _, err := p.handleNotification(ctx, n, &sc); err != nil {
		return err
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true, "data": json.RawMessage(body)})
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	return s
}
