package veriff

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
func (p *Veriff) Routes() []provider.Route {
	return []provider.Route{
		{Path: "/start", Methods: []string{http.MethodGet, http.MethodPost}, Kind: provider.StartSession},
		{Path: "/onboarding-url", Methods: []string{http.MethodGet}, Kind: provider.StartSession},
		{Path: "/webhook", Methods: []string{http.MethodPost}, Kind: provider.SignedWebhook,
			CredentialHeaders: []string{"X-Hmac-Signature", "Vrf-Hmac-Signature", "X-Auth-Client", "Vrf-Auth-Client"}},
	}
}

// idRe bounds Veriff's session and attempt ids (UUIDs): they go into URL
// paths, storage index keys and logs.
var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// sign is the hex HMAC-SHA256 of msg with secret, as Veriff signs.
func sign(secret, msg []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

func (p *Veriff) headers() http.Header {
	return http.Header{"X-Auth-Client": {p.key}}
}

// Start implements provider.Starter: POST /v1/sessions. externalUserId
// becomes verification.vendorData, firstName and lastName
// verification.person.
func (p *Veriff) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	v := map[string]any{}
	if p.callback != "" {
		v["callback"] = p.callback
	}
	if in.ExternalUserID != "" {
		v["vendorData"] = in.ExternalUserID
	}
	if in.FirstName != "" || in.LastName != "" {
		person := map[string]string{}
		if in.FirstName != "" {
			person["firstName"] = in.FirstName
		}
		if in.LastName != "" {
			person["lastName"] = in.LastName
		}
		v["person"] = person
	}
	body, err := json.Marshal(map[string]any{"verification": v})
	if err != nil {
		return provider.StartResult{}, err
	}
	h := p.headers()
	// Only X-AUTH-CLIENT is required here; Veriff's own demo signs the
	// body too, which is harmless, so the bytes sent are signed.
	if len(p.secrets) > 0 {
		h.Set("X-Hmac-Signature", sign(p.secrets[0], body))
	}
	var out struct {
		Status       string `json:"status"`
		Verification struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		} `json:"verification"`
	}
	// Not retried: one /start is one billable session.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v1/sessions", Method: http.MethodPost, Path: "/v1/sessions",
		Header: h, Body: json.RawMessage(body)}, &out); err != nil {
		return provider.StartResult{}, err
	}
	u, err := url.Parse(out.Verification.URL)
	if !idRe.MatchString(out.Verification.ID) || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return provider.StartResult{}, upstream.ErrMalformed
	}
	res := provider.StartResult{Ref: out.Verification.ID, URL: out.Verification.URL}
	if in.ExternalUserID != "" {
		res.Meta = map[string]string{"externalUserId": in.ExternalUserID}
	}
	return res, nil
}

// StartAnswer implements provider.Starter: {"sessionId","url"} beside the
// core's uniqueId.
func (p *Veriff) StartAnswer(_ string, s *session.Session) map[string]any {
	return map[string]any{"sessionId": s.Ref, "url": s.URL}
}

// Errors of VerifyWebhook (for logs; the client is told 401).
var (
	ErrNoSignature  = errors.New("no X-HMAC-SIGNATURE header")
	ErrBadSignature = errors.New("the signature matches no shared secret")
	ErrWrongClient  = errors.New("X-AUTH-CLIENT is not this integration's API key")
)

// VerifyWebhook implements provider.WebhookVerifier: X-HMAC-SIGNATURE (or
// VRF-HMAC-SIGNATURE) must be the hex HMAC-SHA256 of the raw body with one
// of the shared secrets. An X-AUTH-CLIENT (or VRF-AUTH-CLIENT) header, when
// present, must be the API key. Compared in constant time.
func (p *Veriff) VerifyWebhook(h http.Header, body []byte) error {
	if len(p.secrets) == 0 {
		return provider.ErrNoWebhookSecret
	}
	sig := h.Get("X-Hmac-Signature")
	if sig == "" {
		sig = h.Get("Vrf-Hmac-Signature")
	}
	if sig == "" {
		return ErrNoSignature
	}
	got, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(sig)))
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature // another algorithm, or not hex
	}
	ok := 0
	for _, s := range p.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		ok |= subtle.ConstantTimeCompare(got, m.Sum(nil))
	}
	if ok != 1 {
		return ErrBadSignature
	}
	client := h.Get("X-Auth-Client")
	if client == "" {
		client = h.Get("Vrf-Auth-Client")
	}
	if client != "" && subtle.ConstantTimeCompare([]byte(client), []byte(p.key)) != 1 {
		return ErrWrongClient
	}
	return nil
}

// Decision is the verification object of a decision webhook and of
// GET /v1/sessions/{id}/decision (the fields caddy-idv reads).
type Decision struct {
	ID           string  `json:"id"`
	AttemptID    string  `json:"attemptId"`
	Status       string  `json:"status"`
	Code         int     `json:"code"`
	DecisionTime *string `json:"decisionTime"`
}

// results maps Veriff's verification.status to the session's result; a
// status not here (resubmission_requested) decides "no result yet".
var results = map[string]string{
	"approved":  provider.ResultVerified,
	"declined":  provider.ResultFailed,
	"review":    provider.ResultReview,
	"expired":   provider.ResultFailed,
	"abandoned": provider.ResultFailed,
}

// decisionStatuses are the statuses of a decision (the others are
// recorded as progress).
var decisionStatuses = map[string]bool{"approved": true, "declined": true, "review": true,
	"resubmission_requested": true, "expired": true, "abandoned": true}

// eventOf is the kit event of a decision. Its key is the attempt and the
// status, so a webhook, its retries and a refresh that read the same
// decision record it once.
func eventOf(d Decision) provider.KitEvent {
	ev := provider.KitEvent{Event: provider.Event{Ref: d.ID, Key: "decision:" + d.AttemptID + ":" + d.Status, Status: d.Status,
		Result: results[d.Status]}, Decision: decisionStatuses[d.Status]}
	if d.DecisionTime != nil {
		if t, err := time.Parse(time.RFC3339Nano, *d.DecisionTime); err == nil {
			ev.At = t
		}
	}
	return ev
}

// statusRe bounds a status or action taken from a webhook.
var statusRe = regexp.MustCompile(`^[a-z_]{1,40}$`)

// ParseWebhook implements provider.WebhookParser. A decision webhook
// carries {"status","verification":{...}}; an event webhook
// {"id","attemptId","action","code",...} (started, submitted). Anything
// else that is JSON (a "fullauto" webhook, whose shape is not confirmed) is
// acknowledged with nothing recorded.
func (p *Veriff) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	return parseWebhook(body)
}

func parseWebhook(body []byte) ([]provider.KitEvent, error) {
	var w struct {
		Verification *Decision `json:"verification"`
		ID           string    `json:"id"`
		AttemptID    string    `json:"attemptId"`
		Action       string    `json:"action"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, provider.Errorf(http.StatusBadRequest, "malformed JSON body: a Veriff decision or event webhook is expected")
	}
	switch {
	case w.Verification != nil:
		d := *w.Verification
		if err := checkIDs(d.ID, d.AttemptID); err != nil {
			return nil, err
		}
		if !statusRe.MatchString(d.Status) {
			return nil, provider.Errorf(http.StatusBadRequest, "verification.status is missing or malformed")
		}
		return []provider.KitEvent{eventOf(d)}, nil
	case w.Action != "":
		if err := checkIDs(w.ID, w.AttemptID); err != nil {
			return nil, err
		}
		if !statusRe.MatchString(w.Action) {
			return nil, provider.Errorf(http.StatusBadRequest, "action is malformed")
		}
		return []provider.KitEvent{{Event: provider.Event{Ref: w.ID, Key: "event:" + w.AttemptID + ":" + w.Action, Status: w.Action}}}, nil
	}
	return nil, nil
}

func checkIDs(id, attempt string) error {
	if !idRe.MatchString(id) {
		return provider.Errorf(http.StatusBadRequest, "the session id is missing or malformed")
	}
	if attempt != "" && !idRe.MatchString(attempt) {
		return provider.Errorf(http.StatusBadRequest, "attemptId is malformed")
	}
	return nil
}

// RefreshEvent implements provider.EventRefresher: the decision read with
// GET /v1/sessions/{id}/decision, signed with the HMAC of the id. A null
// verification (no decision yet) is nothing new; without a shared secret
// the decision cannot be read.
func (p *Veriff) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	if s.Provider != Name || !idRe.MatchString(s.Ref) || len(p.secrets) == 0 {
		return provider.KitEvent{}, nil
	}
	h := p.headers()
	h.Set("X-Hmac-Signature", sign(p.secrets[0], []byte(s.Ref)))
	var out struct {
		Verification *Decision `json:"verification"`
	}
	if _, err := p.up.Do(ctx, upstream.Request{Op: "v1/sessions/{id}/decision", Method: http.MethodGet,
		Path: "/v1/sessions/" + s.Ref + "/decision", Header: h, Idempotent: true,
		LogFields: []zap.Field{zap.String("sessionId", s.Ref)}}, &out); err != nil {
		return provider.KitEvent{}, err
	}
	if out.Verification == nil || !statusRe.MatchString(out.Verification.Status) {
		return provider.KitEvent{}, nil
	}
	d := *out.Verification
	d.ID = s.Ref
	if d.AttemptID != "" && !idRe.MatchString(d.AttemptID) {
		return provider.KitEvent{}, upstream.ErrMalformed
	}
	return eventOf(d), nil
}
