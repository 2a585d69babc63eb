package incode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Finished is the onboarding status after which scores are final.
const Finished = "ONBOARDING_FINISHED"

// notification is what the routes read from any Incode webhook. Incode's
// onboarding-status webhook carries interviewId and onboardingStatus;
// its session and face-authentication webhooks are documented without a
// published payload, so their id and type are looked for under the usual
// names (an assumption, see docs/providers/incode.md).
type notification struct {
	InterviewID, Status string
	// Type names the webhook in logs: its status or event type.
	Type string
}

func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k].(string); ok && strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// parseNotification reads a webhook payload; ok is false when it names no
// interview and status (an unknown shape, acknowledged and logged).
func parseNotification(data map[string]any) (n notification, ok bool) {
	n.InterviewID = str(data, "interviewId")
	n.Status = str(data, "onboardingStatus", "status", "eventType", "event", "type")
	if inner, isObj := data["data"].(map[string]any); isObj {
		if n.InterviewID == "" {
			n.InterviewID = str(inner, "interviewId")
		}
		if n.Status == "" {
			n.Status = str(inner, "onboardingStatus", "status", "eventType", "event", "type")
		}
	}
	n.Type = n.Status
	if n.Type == "" {
		n.Type = "unknown"
	}
	if len(n.Type) > 64 {
		n.Type = n.Type[:64]
	}
	return n, n.InterviewID != "" && n.Status != "" && len(n.InterviewID) <= 256 && len(n.Status) <= 64
}

func (p *Incode) readNotification(r *http.Request) (notification, map[string]any, bool, error) {
	var data map[string]any
	if err := provider.DecodeJSON(r, &data, true); err != nil {
		return notification{}, nil, false, err
	}
	n, ok := parseNotification(data)
	if !ok {
		// Acknowledged, never a 4xx: Incode would retry it for half an hour.
		p.host.Logger.Warn("incode webhook of an unknown shape acknowledged", zap.String("type", n.Type))
	}
	return n, data, ok, nil
}

// executiveScore reads an interview's score with the executive token.
func (p *Incode) executiveScore(ctx context.Context, interviewID string) (Score, error) {
	var sc Score
	_, err := p.withExecutive(ctx, upstream.Request{Op: "omni/get/score", Method: http.MethodGet, Path: "/omni/get/score",
		Query: url.Values{"id": {interviewID}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", interviewID)}}, &sc)
	return sc, err
}

// resultOf maps Incode's overall score status to the session's result:
//
//	OK, MANUAL_OK            verified
//	FAIL, MANUAL_FAIL        failed
//	WARN                     warn_result (default review)
//	MANUAL, MANUAL_PENDING   review
//	UNKNOWN, anything else   none yet (pending)
func (p *Incode) resultOf(status string) string {
	switch status {
	case "OK", "MANUAL_OK":
		return provider.ResultVerified
	case "FAIL", "MANUAL_FAIL":
		return provider.ResultFailed
	case "WARN":
		if p.WarnResult != "" {
			return p.WarnResult
		}
		return provider.ResultReview
	case "MANUAL", "MANUAL_PENDING":
		return provider.ResultReview
	}
	return ""
}

// readsScore reports whether the score is read for an onboarding status:
// the ones after which Incode's verdict can be final.
func readsScore(status string) bool {
	switch status {
	case Finished, "MANUAL_REVIEW_APPROVED", "MANUAL_REVIEW_REJECTED":
		return true
	}
	return false
}

// eventKey deduplicates deliveries. It includes the score, so a delivery
// seen while the score was UNKNOWN does not hide a later, final one.
func eventKey(interviewID, status, score string) string {
	return interviewID + ":" + status + ":" + score
}

// finalScoreSeen returns the final score recorded for (interview, status),
// if any: a redelivery then needs no new score read.
func (p *Incode) finalScoreSeen(s *session.Session, interviewID, status string) string {
	prefix := eventKey(interviewID, status, "")
	for _, e := range s.Events {
		if sc, ok := strings.CutPrefix(e.Key, prefix); ok && p.resultOf(sc) != "" {
			return sc
		}
	}
	return ""
}

func (p *Incode) hasExecutive() bool { return p.email != "" || p.static != "" }

// handleNotification records what a webhook says about a stored session.
// For a status after which the verdict can be final it reads the score
// first (known, when not nil, is a score the caller already read), so the
// session's status and result change together. The result comes only from
// the score the provider gives the executive token, never from the
// payload: a webhook says that something changed, the provider says what.
func (p *Incode) handleNotification(ctx context.Context, n notification, known *Score) (score string, duplicate bool, err error) {
	stored, lerr := p.host.Sessions.LoadByRef(ctx, n.InterviewID)
	if errors.Is(lerr, session.ErrNotFound) {
		// A session started elsewhere (the dashboard, another backend).
		p.host.Logger.Warn("incode webhook for an interview with no stored session acknowledged",
			zap.String("interviewId", n.InterviewID), zap.String("type", n.Type))
		return "", false, nil
	}
	if lerr != nil {
		return "", false, lerr
	}
	ev := provider.Event{Ref: n.InterviewID, Key: eventKey(n.InterviewID, n.Status, ""), Status: n.Status}
	if readsScore(n.Status) {
		if sc := p.finalScoreSeen(stored, n.InterviewID, n.Status); sc != "" && known == nil {
			p.count(provider.CountWebhooks, "deduplicated")
			return sc, true, nil
		}
		if known != nil || p.hasExecutive() {
			sc := known
			if sc == nil {
				read, err := p.executiveScore(ctx, n.InterviewID)
				if err != nil {
					return "", false, upstream.ClientError(err)
				}
				sc = &read
			}
			score = orUnknown(sc.Overall.Status)
			ev.Key, ev.Score, ev.Result = eventKey(n.InterviewID, n.Status, score), score, p.resultOf(score)
			p.host.Logger.Info("onboarding status", zap.String("interviewId", n.InterviewID),
				zap.String("onboardingStatus", n.Status), zap.String("score", score))
		} else {
			p.host.Logger.Warn("no executive credentials are configured to read the score: the result stays unknown",
				zap.String("interviewId", n.InterviewID), zap.String("onboardingStatus", n.Status))
		}
	}
	_, isNew, err := p.host.Record(ctx, ev)
	if err != nil {
		return score, false, err
	}
	return score, !isNew, nil
}

// Refresh implements provider.Refresher: while a session has no result,
// the core asks at most every few seconds. It reads the onboarding status
// with the executive token and, once it is one after which the verdict can
// be final, the score; so a session whose webhook was missed, or arrived
// while the score was still UNKNOWN, still reaches a result.
func (p *Incode) Refresh(ctx context.Context, s *session.Session) (provider.Event, error) {
	if s.Provider != "incode" || s.Ref == "" || !p.hasExecutive() {
		return provider.Event{}, nil
	}
	var st struct {
		OnboardingStatus string `json:"onboardingStatus"`
	}
	if _, err := p.withExecutive(ctx, upstream.Request{Op: "omni/get/onboarding/status", Method: http.MethodGet,
		Path: "/omni/get/onboarding/status", Query: url.Values{"id": {s.Ref}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", s.Ref)}}, &st); err != nil {
		return provider.Event{}, err
	}
	if !readsScore(st.OnboardingStatus) {
		return provider.Event{}, nil
	}
	sc, err := p.executiveScore(ctx, s.Ref)
	if err != nil {
		return provider.Event{}, err
	}
	score := orUnknown(sc.Overall.Status)
	result := p.resultOf(score)
	if result == "" {
		return provider.Event{}, nil
	}
	return provider.Event{Ref: s.Ref, Key: eventKey(s.Ref, st.OnboardingStatus, score), Status: st.OnboardingStatus,
		Score: score, Result: result}, nil
}

func timestamp() string { return time.Now().UTC().Format(time.RFC3339) }

// serveWebhook acknowledges every authenticated webhook with a 200 and the
// payload echoed, as the samples do; what it says about a stored session
// is recorded on it.
func (p *Incode) serveWebhook(w http.ResponseWriter, r *http.Request) error {
	n, data, ok, err := p.readNotification(r)
	if err != nil {
		return err
	}
	if ok {
		if _, _, err := p.handleNotification(context.WithoutCancel(r.Context()), n, nil); err != nil {
			return err
		}
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true, "data": data})
	return nil
}

// approveClaimTTL is how long a claimed approval blocks another; the claim
// lives on the session, which the sweep deletes after its retention.
const approveClaimTTL = 90 * 24 * time.Hour

// serveApprove is the webhook that also approves the identity (creates the
// customer for face login) when the finished onboarding scored OK.
// Refusals are answered 200 with success false: the delivery itself
// succeeded and must not be retried. The approval is claimed under the
// storage lock before Incode is called, with a key of its own (so a
// /webhook delivery of the same notification does not hide it), and the
// claim is released when no approval was made, so a retry can make it.
func (p *Incode) serveApprove(w http.ResponseWriter, r *http.Request) error {
	n, data, ok, err := p.readNotification(r)
	if err != nil {
		return err
	}
	if !ok {
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true, "data": data})
		return nil
	}
	ctx := context.WithoutCancel(r.Context())
	if n.Status != Finished {
		if _, _, err := p.handleNotification(ctx, n, nil); err != nil {
			return err
		}
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": false,
			"error": fmt.Sprintf("onboardingStatus is %s, not %s: nothing to approve", n.Status, Finished)})
		return nil
	}
	if !p.hasExecutive() {
		return provider.Errorf(http.StatusNotImplemented, "approve needs executive credentials (admin_email and admin_password, or admin_token)")
	}
	claimed, release, err := p.host.Claim(ctx, n.InterviewID, "approve", approveClaimTTL)
	if err != nil {
		return err
	}
	if !claimed {
		p.count(provider.CountWebhooks, "deduplicated")
		score := ""
		if stored, err := p.host.Sessions.LoadByRef(ctx, n.InterviewID); err == nil {
			score = stored.Score
		}
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": true,
			"data": map[string]any{"duplicate": true, "score": score}})
		return nil
	}
	sc, err := p.executiveScore(ctx, n.InterviewID)
	if upstream.Status(err) == http.StatusNotFound {
		release()
		p.host.Logger.Warn("incode approve webhook for an interview Incode does not know acknowledged",
			zap.String("interviewId", n.InterviewID))
		provider.WriteJSON(w, http.StatusOK, map[string]any{"timestamp": timestamp(), "success": false,
			"error": "interview not found: identity not approved"})
		return nil
	}
	if err != nil {
		release()
		return upstream.ClientError(err)
	}
	if sc.Overall.Status != "OK" {
		release() // nothing approved: a later delivery (after a review) may
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
	if err == nil && !json.Valid(body) {
		err = upstream.ErrMalformed
	}
	if err != nil {
		release()
		return upstream.ClientError(err)
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

var _ provider.Refresher = (*Incode)(nil)
