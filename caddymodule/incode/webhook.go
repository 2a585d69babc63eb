package incode

import (
	"context"
	"encoding/json"
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

// ParseWebhook implements provider.WebhookParser: a notification that
// names an interview and a status is one event; any other JSON is
// acknowledged with nothing recorded (never a 4xx: Incode would retry it for
// half an hour).
func (p *Incode) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	var data map[string]any
	if err := provider.DecodeJSONBytes(body, &data, true); err != nil {
		return nil, err
	}
	n, ok := parseNotification(data)
	if !ok {
		p.host.Logger.Warn("incode webhook of an unknown shape acknowledged", zap.String("type", n.Type))
		return nil, nil
	}
	return []provider.KitEvent{{Event: provider.Event{Ref: n.InterviewID, Key: eventKey(n.InterviewID, n.Status, ""), Status: n.Status}}}, nil
}

// WebhookAnswer implements provider.WebhookAnswerer: the payload echoed
// with a timestamp, as Incode's samples answer.
func (p *Incode) WebhookAnswer(_ string, body []byte) any {
	var data map[string]any
	_ = json.Unmarshal(body, &data) // ParseWebhook has decoded it
	return ack(data)
}

func ack(data any) map[string]any {
	return map[string]any{"timestamp": timestamp(), "success": true, "data": data}
}

// refusal answers a delivery that was received but not acted on (200: it
// must not be retried).
func refusal(msg string) map[string]any {
	return map[string]any{"timestamp": timestamp(), "success": false, "error": msg}
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

// scored is the event of an onboarding status whose score is known; it
// decides the session's result when the score is final.
func (p *Incode) scored(interviewID, status string, sc Score) provider.KitEvent {
	score := orUnknown(sc.Overall.Status)
	result := p.resultOf(score)
	return provider.KitEvent{Event: provider.Event{Ref: interviewID, Key: eventKey(interviewID, status, score), Status: status,
		Score: score, Result: result}, Decision: result != ""}
}

// WebhookEffect implements provider.WebhookEffector: /approve approves the
// identity once; every event is completed with the score first.
func (p *Incode) WebhookEffect(ctx context.Context, e *provider.EventEffect) error {
	if e.Route == "/approve" {
		return p.approve(ctx, e)
	}
	return p.readScore(ctx, e, nil)
}

// readScore completes a webhook's event: for a status after which the
// verdict can be final it reads the score first (known, when not nil, is a
// score already read), so the session's status and result change together.
// The result comes only from the score the provider gives the executive
// token, never from the payload: a webhook says that something changed, the
// provider says what.
func (p *Incode) readScore(ctx context.Context, e *provider.EventEffect, known *Score) error {
	iid, status := e.Event.Ref, e.Event.Status
	if e.Session == nil {
		// A session started elsewhere (the dashboard, another backend).
		p.host.Logger.Warn("incode webhook for an interview with no stored session acknowledged",
			zap.String("interviewId", iid), zap.String("type", status))
		return nil
	}
	if !readsScore(status) {
		return nil
	}
	if known == nil {
		if sc := p.finalScoreSeen(e.Session, iid, status); sc != "" {
			e.Duplicate = true
			return nil
		}
		if !p.hasExecutive() {
			p.host.Logger.Warn("no executive credentials are configured to read the score: the result stays unknown",
				zap.String("interviewId", iid), zap.String("onboardingStatus", status))
			return nil
		}
		read, err := p.executiveScore(ctx, iid)
		if err != nil {
			return upstream.ClientError(err)
		}
		known = &read
	}
	e.Event = p.scored(iid, status, *known)
	p.host.Logger.Info("onboarding status", zap.String("interviewId", iid),
		zap.String("onboardingStatus", status), zap.String("score", e.Event.Score))
	return nil
}

// RefreshEvent implements provider.EventRefresher: Refresh, recorded by the
// same rules as the webhooks.
func (p *Incode) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	if s.Provider != "incode" || s.Ref == "" || !p.hasExecutive() {
		return provider.KitEvent{}, nil
	}
	var st struct {
		OnboardingStatus string `json:"onboardingStatus"`
	}
	if _, err := p.withExecutive(ctx, upstream.Request{Op: "omni/get/onboarding/status", Method: http.MethodGet,
		Path: "/omni/get/onboarding/status", Query: url.Values{"id": {s.Ref}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", s.Ref)}}, &st); err != nil {
		return provider.KitEvent{}, err
	}
	if !readsScore(st.OnboardingStatus) {
		return provider.KitEvent{}, nil
	}
	sc, err := p.executiveScore(ctx, s.Ref)
	if err != nil {
		return provider.KitEvent{}, err
	}
	if ev := p.scored(s.Ref, st.OnboardingStatus, sc); ev.Decision {
		return ev, nil
	}
	return provider.KitEvent{}, nil
}

func timestamp() string { return time.Now().UTC().Format(time.RFC3339) }

// approveClaimTTL is how long a claimed approval blocks another; the claim
// lives on the session, which the sweep deletes after its retention.
const approveClaimTTL = 90 * 24 * time.Hour

// approve is the effect of /approve: it also approves the identity (creates
// the customer for face login) when the finished onboarding scored OK.
// Refusals are answered 200 with success false: the delivery itself
// succeeded and must not be retried. The approval is claimed under the
// storage lock before Incode is called, with a key of its own (so a
// /webhook delivery of the same notification does not hide it), and the
// claim is released when no approval was made, so a retry can make it.
func (p *Incode) approve(ctx context.Context, e *provider.EventEffect) error {
	iid, status := e.Event.Ref, e.Event.Status
	if status != Finished {
		e.Answer = refusal(fmt.Sprintf("onboardingStatus is %s, not %s: nothing to approve", status, Finished))
		return p.readScore(ctx, e, nil)
	}
	if !p.hasExecutive() {
		return provider.Errorf(http.StatusNotImplemented, "approve needs executive credentials (admin_email and admin_password, or admin_token)")
	}
	claimed, release, err := e.Once("approve", approveClaimTTL)
	if err != nil {
		return err
	}
	if !claimed {
		e.Duplicate = true
		score := ""
		if e.Session != nil {
			score = e.Session.Score
		}
		e.Answer = ack(map[string]any{"duplicate": true, "score": score})
		return nil
	}
	sc, err := p.executiveScore(ctx, iid)
	switch {
	case upstream.Status(err) == http.StatusNotFound:
		release()
		p.host.Logger.Warn("incode approve webhook for an interview Incode does not know acknowledged", zap.String("interviewId", iid))
		e.Event.Key = ""
		e.Answer = refusal("interview not found: identity not approved")
		return nil
	case err != nil:
		release()
		return upstream.ClientError(err)
	case sc.Overall.Status != "OK":
		release() // nothing approved: a later delivery (after a review) may
		e.Answer = refusal(fmt.Sprintf("score is %s, not OK: identity not approved", orUnknown(sc.Overall.Status)))
		return p.readScore(ctx, e, &sc)
	}
	body, err := p.withExecutive(ctx, upstream.Request{Op: "omni/process/approve", Method: http.MethodPost, Path: "/omni/process/approve",
		Query: url.Values{"interviewId": {iid}}, Body: map[string]any{},
		LogFields: []zap.Field{zap.String("interviewId", iid)}}, nil)
	if err == nil && !json.Valid(body) {
		err = upstream.ErrMalformed
	}
	if err != nil {
		if upstream.Status(err) != 0 {
			release() // Incode answered a refusal: nothing was approved
		} else {
			// A timeout, a cut connection or a garbled 200: the approval
			// may have happened, so it is not made again (act once).
			p.host.Logger.Warn("incode approve outcome unknown: not retried, check the interview in Incode's dashboard",
				zap.String("interviewId", iid), zap.String("error", err.Error()))
		}
		return upstream.ClientError(err)
	}
	// The answer goes back to whoever sent the webhook: never the
	// customer token Incode's approval answer carries.
	var data map[string]any
	if json.Unmarshal(body, &data) != nil {
		data = nil
	}
	delete(data, "token")
	e.Answer = ack(data)
	return p.readScore(ctx, e, &sc)
}

func orUnknown(s string) string {
	if s == "" {
		return "UNKNOWN"
	}
	return s
}

var (
	_ provider.EventRefresher  = (*Incode)(nil)
	_ provider.Starter         = (*Incode)(nil)
	_ provider.StartChecker    = (*Incode)(nil)
	_ provider.StartResumer    = (*Incode)(nil)
	_ provider.WebhookParser   = (*Incode)(nil)
	_ provider.WebhookEffector = (*Incode)(nil)
	_ provider.WebhookAnswerer = (*Incode)(nil)
)
