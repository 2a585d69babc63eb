package onfido

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Routes implements provider.Provider: all served by the core (kit routes).
func (p *Onfido) Routes() []provider.Route {
	return []provider.Route{
		{Path: "/start", Methods: []string{http.MethodGet, http.MethodPost}, Kind: provider.StartSession},
		{Path: "/token", Methods: []string{http.MethodGet}, Kind: provider.SessionToken},
		{Path: "/webhook", Methods: []string{http.MethodPost}, Kind: provider.SignedWebhook, CredentialHeaders: []string{"X-Sha2-Signature"}},
	}
}

// Default applicant names, sent when the caller gives none: Onfido requires
// first_name and last_name on every applicant.
const (
	DefaultFirstName = "Anonymous"
	DefaultLastName  = "Applicant"
)

// nameForbidden are the characters Onfido refuses in applicant names.
const nameForbidden = "!#$%*=<>;{}\""

// Session meta keys (no secrets).
const (
	metaApplicant = "applicantId"
	metaReferrer  = "referrer"
	metaExternal  = "externalUserId"
)

// idRe bounds Onfido's ids (UUIDs): they go into URL paths, storage index
// keys and logs.
var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// statusRe bounds a status taken from Onfido.
var statusRe = regexp.MustCompile(`^[a-z_]{1,40}$`)

// actionRe bounds a webhook's resource_type and action.
var actionRe = regexp.MustCompile(`^[a-z_]{1,40}(\.[a-z_]{1,40})?$`)

func (p *Onfido) headers() http.Header {
	return http.Header{"Authorization": {"Token token=" + p.token}}
}

// WorkflowRun is the part of Onfido's WorkflowRun object caddy-idv reads.
type WorkflowRun struct {
	ID          string  `json:"id"`
	ApplicantID string  `json:"applicant_id"`
	Status      string  `json:"status"`
	SDKToken    *string `json:"sdk_token"`
	UpdatedAt   string  `json:"updated_at"`
	Link        *struct {
		URL string `json:"url"`
	} `json:"link"`
}

// Start implements provider.Starter: POST /v3.6/applicants, POST
// /v3.6/workflow_runs, and POST /v3.6/sdk_token when the run has no
// sdk_token. None is retried: each creates something at Onfido.
func (p *Onfido) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	first, last := in.FirstName, in.LastName
	if first == "" {
		first = DefaultFirstName
	}
	if last == "" {
		last = DefaultLastName
	}
	for _, n := range []struct{ field, v string }{{"firstName", first}, {"lastName", last}} {
		if strings.ContainsAny(n.v, nameForbidden) {
			return provider.StartResult{}, provider.Errorf(http.StatusBadRequest, "%s must not contain any of %s (Onfido refuses them)", n.field, nameForbidden)
		}
	}
	var app struct {
		ID string `json:"id"`
	}
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v3.6/applicants", Method: http.MethodPost, Path: APIVersion + "/applicants",
		Header: p.headers(), Body: map[string]string{"first_name": first, "last_name": last}}, &app); err != nil {
		return provider.StartResult{}, err
	}
	if !idRe.MatchString(app.ID) {
		return provider.StartResult{}, upstream.ErrMalformed
	}
	run := map[string]any{"workflow_id": p.workflowID, "applicant_id": app.ID}
	if in.ExternalUserID != "" {
		run["customer_user_id"] = in.ExternalUserID
	}
	if in.RedirectURL != "" {
		run["link"] = map[string]any{"completed_redirect_url": in.RedirectURL}
	}
	var wr WorkflowRun
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v3.6/workflow_runs", Method: http.MethodPost, Path: APIVersion + "/workflow_runs",
		Header: p.headers(), Body: run, LogFields: []zap.Field{zap.String("applicantId", app.ID)}}, &wr); err != nil {
		return provider.StartResult{}, err
	}
	if !idRe.MatchString(wr.ID) {
		return provider.StartResult{}, upstream.ErrMalformed
	}
	res := provider.StartResult{Ref: wr.ID, Meta: map[string]string{metaApplicant: app.ID}}
	if wr.Link != nil && wr.Link.URL != "" {
		u, err := url.Parse(wr.Link.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return provider.StartResult{}, upstream.ErrMalformed
		}
		res.URL = wr.Link.URL
	}
	if p.referrer == "" && in.Origin != "" {
		// Kept for the token route, which has no origin of its own.
		res.Meta[metaReferrer] = in.Origin + "/*"
	}
	if in.ExternalUserID != "" {
		res.Meta[metaExternal] = in.ExternalUserID
	}
	if wr.SDKToken != nil && *wr.SDKToken != "" {
		res.Token, res.TokenExpiresAt = *wr.SDKToken, p.expiry(*wr.SDKToken)
		return res, nil
	}
	// The run exists: an error here is answered after the session is stored,
	// and GET /token mints the token later.
	tok, exp, err := p.sdkToken(ctx, app.ID, p.referrerOf(res.Meta))
	if err != nil {
		return res, err
	}
	res.Token, res.TokenExpiresAt = tok, exp
	return res, nil
}

func (p *Onfido) referrerOf(meta map[string]string) string {
	if p.referrer != "" {
		return p.referrer
	}
	return meta[metaReferrer]
}

// sdkToken is POST /v3.6/sdk_token for applicant.
func (p *Onfido) sdkToken(ctx context.Context, applicant, referrer string) (string, time.Time, error) {
	body := map[string]string{"applicant_id": applicant}
	if referrer != "" {
		body["referrer"] = referrer
	}
	var out struct {
		Token string `json:"token"`
	}
	// Retried: a token costs nothing and replaces none.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v3.6/sdk_token", Method: http.MethodPost, Path: APIVersion + "/sdk_token",
		Header: p.headers(), Body: body, Idempotent: true, LogFields: []zap.Field{zap.String("applicantId", applicant)}}, &out); err != nil {
		return "", time.Time{}, err
	}
	if out.Token == "" {
		return "", time.Time{}, upstream.ErrMalformed
	}
	return out.Token, p.expiry(out.Token), nil
}

// expiry is when tok expires: its exp claim, capped by the SDK token
// lifetime from now.
func (p *Onfido) expiry(tok string) time.Time {
	now := p.host.Now()
	limit := now.Add(p.ttl)
	if exp, ok := provider.JWTExpiry(tok); ok && exp.Before(limit) {
		return exp
	}
	return limit
}

// StartAnswer implements provider.Starter: {"token","workflowRunId","url"}
// beside the core's uniqueId. The token is the browser's own SDK token;
// after it expires, GET /token gives a fresh one.
func (p *Onfido) StartAnswer(_ string, s *session.Session) map[string]any {
	return map[string]any{"token": s.Token, "workflowRunId": s.Ref, "url": s.URL}
}

// RefreshToken implements provider.TokenRefresher: POST /v3.6/sdk_token for
// the session's applicant (the Web SDK needs a new token per init).
func (p *Onfido) RefreshToken(ctx context.Context, s *session.Session) (string, time.Time, error) {
	applicant := s.Meta[metaApplicant]
	if !idRe.MatchString(applicant) {
		return "", time.Time{}, provider.Errorf(http.StatusConflict, "the session has no Onfido applicant")
	}
	return p.sdkToken(ctx, applicant, p.referrerOf(s.Meta))
}

// Errors of VerifyWebhook (for logs; the client is told 401).
var (
	ErrNoSignature  = errors.New("no X-SHA2-Signature header")
	ErrBadSignature = errors.New("the signature matches no webhook token")
)

// VerifyWebhook implements provider.WebhookVerifier: X-SHA2-Signature must
// be the hex HMAC-SHA256 of the raw body with one of the webhook tokens,
// compared in constant time.
func (p *Onfido) VerifyWebhook(h http.Header, body []byte) error {
	return verify(p.hooks, h, body)
}

func verify(keys [][]byte, h http.Header, body []byte) error {
	if len(keys) == 0 {
		return provider.ErrNoWebhookSecret
	}
	sig := h.Get("X-Sha2-Signature")
	if sig == "" {
		return ErrNoSignature
	}
	got, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(sig)))
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature // another algorithm (X-Signature was SHA-1), or not hex
	}
	ok := 0
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write(body)
		ok |= subtle.ConstantTimeCompare(got, m.Sum(nil))
	}
	if ok != 1 {
		return ErrBadSignature
	}
	return nil
}

// sign is the hex HMAC-SHA256 of body with key, as Onfido signs webhooks.
func sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// results maps a workflow run's final status to the session's result.
var results = map[string]string{
	"approved":  provider.ResultVerified,
	"declined":  provider.ResultFailed,
	"review":    provider.ResultReview,
	"abandoned": provider.ResultFailed,
	"error":     provider.ResultFailed,
}

// eventOf is the kit event of a workflow run in status at t. Its key is the
// run and the status, so a webhook, its retries, a replay and a refresh that
// read the same outcome record it once.
func eventOf(id, status string, at time.Time) provider.KitEvent {
	_, final := results[status]
	return provider.KitEvent{Event: provider.Event{Ref: id, Key: "workflow_run:" + id + ":" + status, Status: status,
		Result: results[status]}, At: at, Decision: final}
}

// ParseWebhook implements provider.WebhookParser.
func (p *Onfido) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	return parseWebhook(body)
}

// parseWebhook reads {"payload":{"resource_type","action","object":{...}}}.
// workflow_run events are recorded (workflow_run.completed decides); other
// resources (checks, reports, tasks) are acknowledged with nothing recorded:
// the run's own event carries the outcome.
func parseWebhook(body []byte) ([]provider.KitEvent, error) {
	var w struct {
		Payload *struct {
			ResourceType string `json:"resource_type"`
			Action       string `json:"action"`
			Object       *struct {
				ID          string `json:"id"`
				Status      string `json:"status"`
				CompletedAt string `json:"completed_at_iso8601"`
			} `json:"object"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.Payload == nil {
		return nil, provider.Errorf(http.StatusBadRequest, "malformed JSON body: an Onfido webhook {\"payload\":{...}} is expected")
	}
	pl := w.Payload
	if !actionRe.MatchString(pl.ResourceType) || !actionRe.MatchString(pl.Action) {
		return nil, provider.Errorf(http.StatusBadRequest, "payload.resource_type and payload.action are required")
	}
	if pl.ResourceType != "workflow_run" {
		return nil, nil
	}
	if pl.Object == nil || !idRe.MatchString(pl.Object.ID) {
		return nil, provider.Errorf(http.StatusBadRequest, "payload.object.id is missing or malformed")
	}
	if !statusRe.MatchString(pl.Object.Status) {
		return nil, provider.Errorf(http.StatusBadRequest, "payload.object.status is missing or malformed")
	}
	var at time.Time
	if t, err := time.Parse(time.RFC3339Nano, pl.Object.CompletedAt); err == nil {
		at = t
	}
	ev := eventOf(pl.Object.ID, pl.Object.Status, at)
	if pl.Action != "workflow_run.completed" {
		ev.Decision, ev.Result = false, "" // progress only
	}
	return []provider.KitEvent{ev}, nil
}

// RefreshEvent implements provider.EventRefresher: GET
// /v3.6/workflow_runs/{id}.
func (p *Onfido) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	if s.Provider != Name || !idRe.MatchString(s.Ref) {
		return provider.KitEvent{}, nil
	}
	var wr WorkflowRun
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v3.6/workflow_runs/{id}", Method: http.MethodGet,
		Path: APIVersion + "/workflow_runs/" + s.Ref, Header: p.headers(), Idempotent: true,
		LogFields: []zap.Field{zap.String("workflowRunId", s.Ref)}}, &wr); err != nil {
		return provider.KitEvent{}, err
	}
	if !statusRe.MatchString(wr.Status) {
		return provider.KitEvent{}, upstream.ErrMalformed
	}
	var at time.Time
	if t, err := time.Parse(time.RFC3339Nano, wr.UpdatedAt); err == nil {
		at = t
	}
	return eventOf(s.Ref, wr.Status, at), nil
}
