package regula

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Name is the provider's name in sessions, logs and sandbox counters.
const Name = "regula"

// Routes implements provider.Provider: the core serves the start and
// webhook routes (kit routes).
func (p *Regula) Routes() []provider.Route {
	start := []string{http.MethodGet, http.MethodPost}
	return []provider.Route{
		{Path: "/start", Methods: start, Kind: provider.StartSession},
		{Path: "/onboarding-url", Methods: start, Kind: provider.StartSession},
		{Path: "/webhook", Methods: []string{http.MethodPost}, Kind: provider.SignedWebhook},
		{Path: "/idv/", Subtree: true, Kind: provider.Passthrough, Forward: p.forward()},
	}
}

// Start implements provider.Starter: an ephemeral token with the API key,
// then a session with that token (flow ephemeral), or one deeplink call.
// /start and /onboarding-url are the same route.
func (p *Regula) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	// The token lives ttl from when Regula mints it, which is after now:
	// the session, counted from now, never outlives its token.
	res := provider.StartResult{ExpiresAt: p.host.Now().Add(p.ttl)}
	if in.ExternalUserID != "" {
		res.Meta = map[string]string{"externalUserId": in.ExternalUserID}
	}
	var err error
	if p.flow == FlowDeeplink {
		var until time.Time
		if res.Token, res.Ref, res.URL, until, err = p.deeplink(ctx, in.ExternalUserID); err != nil {
			return provider.StartResult{}, err
		}
		if !until.IsZero() && until.Before(res.ExpiresAt) {
			res.ExpiresAt = until // Regula's own expiresAt, when it is the earlier
		}
		return res, nil
	}
	if res.Token, err = p.ephemeral(ctx); err != nil {
		return provider.StartResult{}, err
	}
	if res.Ref, err = p.createSession(ctx, res.Token, in.ExternalUserID); err != nil {
		return provider.StartResult{}, err
	}
	res.URL = p.handoffURL(res.Token, res.Ref)
	return res, nil
}

// StartAnswer implements provider.Starter: {"sessionId","url","expiresAt",
// "mobileUrl"} beside the core's uniqueId.
func (p *Regula) StartAnswer(_ string, s *session.Session) map[string]any {
	return map[string]any{"sessionId": s.Ref, "url": s.URL, "expiresAt": s.ExpiresAt.UTC().Format(time.RFC3339),
		"mobileUrl": mobileURL(s.URL)}
}

// mobileURL is the inner /mobile link of a handoff URL, the form the IDV
// SDK's token mode takes: the url parameter of a /capture link, or the link
// itself (the deeplink flow answers the /mobile link directly).
func mobileURL(handoff string) string {
	u, err := url.Parse(handoff)
	if err != nil || u.Path != "/capture" || !u.Query().Has("url") {
		return handoff
	}
	return u.Query().Get("url")
}

// ephemeral mints the session's own ephemeral token. It is the only call
// that carries the API key on the start path, and it is never cached under a
// shared key: every session gets a fresh token that reaches only its data.
func (p *Regula) ephemeral(ctx context.Context) (string, error) {
	var out struct {
		Authorization string `json:"authorization"`
	}
	// Not retried: each call creates an ephemeral device.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "api/device/ephemeral", Method: http.MethodPost, Path: "/api/device/ephemeral",
		Header: http.Header{"Authorization": {p.keyHeader}}, Body: map[string]int64{"ttl": int64(p.ttl / time.Second)}}, &out); err != nil {
		return "", err
	}
	if strings.TrimSpace(out.Authorization) == "" {
		return "", upstream.ErrMalformed
	}
	return out.Authorization, nil
}

// deeplink starts a session in one call, as Regula's current Token URL page
// documents: POST /api/v1/deeplink?workflowId= with the API key (permission
// deeplink:write) answers {url, createdAt, expiresAt, workflowIds}, where url
// is the /mobile link carrying the session's token and id. The token (the
// authorization parameter, "Token <t>") is kept for passthrough calls, as the
// ephemeral flow's token is.
func (p *Regula) deeplink(ctx context.Context, externalUserID string) (tok, id, link string, expires time.Time, err error) {
	meta := map[string]string{}
	if externalUserID != "" {
		meta["externalUserId"] = externalUserID
	}
	var out struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expiresAt"`
	}
	// Not retried: one /start is one billable session.
	if _, err = p.up.Do(ctx, upstream.Request{Op: "api/v1/deeplink", Method: http.MethodPost, Path: "/api/v1/deeplink",
		Query: url.Values{"workflowId": {p.workflow}}, Header: http.Header{"Authorization": {p.keyHeader}},
		Body: map[string]any{"metadata": meta, "locale": nil, "ttl": int64(p.ttl / time.Second)}}, &out); err != nil {
		return "", "", "", time.Time{}, err
	}
	tok, id, ok := parseDeeplink(out.URL)
	if !ok {
		return "", "", "", time.Time{}, upstream.ErrMalformed
	}
	if out.ExpiresAt != "" {
		if t, terr := time.Parse(time.RFC3339Nano, out.ExpiresAt); terr == nil {
			expires = t.UTC()
		} else {
			p.host.Logger.Warn("regula deeplink expiresAt not understood; using ttl", zap.String("sessionId", id))
		}
	}
	return tok, id, out.URL, expires, nil
}

// parseDeeplink reads the token and session id of a deeplink answer's url,
// an absolute http(s) /mobile link: ?authorization=<token>&sessionId=<id>.
func parseDeeplink(link string) (tok, id string, ok bool) {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", "", false
	}
	q := u.Query()
	tok, id = q.Get("authorization"), q.Get("sessionId")
	if strings.TrimSpace(tok) == "" || strings.ContainsAny(tok, "\r\n") || !sessionIDRe.MatchString(id) {
		return "", "", false
	}
	return tok, id, true
}

// sessionIDRe bounds what Regula's session id may be: it goes into URLs and
// result paths, so nothing that could change a path or a query.
var sessionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// createSession starts the workflow session with the ephemeral token, used
// verbatim as the Authorization header, and returns its id.
func (p *Regula) createSession(ctx context.Context, tok, externalUserID string) (string, error) {
	meta := map[string]string{}
	if externalUserID != "" {
		meta["externalUserId"] = externalUserID
	}
	var out struct {
		ID json.RawMessage `json:"id"`
	}
	// Not retried: one /start is one billable session.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "api/sessions", Method: http.MethodPost, Path: "/api/sessions",
		Query: url.Values{"workflowId": {p.workflow}}, Header: http.Header{"Authorization": {tok}},
		Body: map[string]any{"metadata": meta}}, &out); err != nil {
		return "", err
	}
	id := rawID(out.ID)
	if !sessionIDRe.MatchString(id) {
		return "", upstream.ErrMalformed
	}
	return id, nil
}

// rawID reads an id that may be a JSON string or number.
func rawID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// queryEscape escapes v for a query value with spaces as %20, the form
// Regula's own links use ("authorization=Token%20...").
func queryEscape(v string) string { return strings.ReplaceAll(url.QueryEscape(v), "+", "%20") }

// handoffURL is the link the browser or phone continues the session with:
// <host>/capture?url=<escaped <host>/mobile?authorization=<token>&sessionId=<id>>.
func (p *Regula) handoffURL(tok, id string) string {
	inner := p.base + "/mobile?authorization=" + queryEscape(tok) + "&sessionId=" + queryEscape(id)
	return p.base + "/capture?url=" + queryEscape(inner)
}

// forward declares /api/idv/*: forwarded to <host>/api/* with the
// ephemeral token of the request's session (its cookie's, or the one ?uniqueId=
// names) as Authorization, and nothing else of the browser's credentials.
// Creating devices, deeplinks or sessions is refused: those go through
// /start, under its quota, and never with a browser's token. Which other
// paths Regula's web component calls is not published: every other path is
// forwarded unless passthrough_allow narrows it.
func (p *Regula) forward() *provider.Forward {
	billable := fmt.Sprintf("creating devices or sessions goes through %s/start (it is billable and rate-limited)", p.host.Prefix)
	rules := []provider.PathRule{
		{Pattern: "device/**", Deny: true, Reason: billable},
		{Pattern: "v1/deeplink*/**", Deny: true, Reason: billable},
		{Pattern: "sessions", NotMethods: []string{http.MethodGet, http.MethodHead}, Deny: true, Reason: billable},
	}
	if len(p.PassthroughAllow) == 0 {
		rules = append(rules, provider.AllowAll)
	}
	for _, pat := range p.PassthroughAllow {
		rules = append(rules, provider.PathRule{Pattern: pat})
	}
	return &provider.Forward{
		Rules:        rules,
		SessionParam: "uniqueId",
		Credential:   func(tok string) http.Header { return http.Header{"Authorization": {tok}} },
		NoSession:    fmt.Sprintf("no live regula session: call %s/start first (session cookie or uniqueId)", p.host.Prefix),
		Proxy:        p.proxy,
	}
}

// Session statuses of Regula's results API.
const (
	StatusNotCompleted = 0
	StatusNotVerified  = 1
	StatusVerified     = 2
	StatusApproved     = 3
	StatusPending      = 4
	StatusRejected     = 1000
)

var statusNames = map[int]string{
	StatusNotCompleted: "NOT_COMPLETED",
	StatusNotVerified:  "NOT_VERIFIED",
	StatusVerified:     "VERIFIED",
	StatusApproved:     "APPROVED",
	StatusPending:      "PENDING",
	StatusRejected:     "REJECTED",
}

// StatusName is the readable name of a Regula session status.
func StatusName(status int) string {
	if n, ok := statusNames[status]; ok {
		return n
	}
	return "STATUS_" + strconv.Itoa(status)
}

// eventOf is the event of a session's status. Its key is the status itself,
// so a webhook and a refresh that learn the same state record it once. A
// status with a result decides the session (a later one, a review's
// REJECTED say, replaces it); the others are progress.
func eventOf(ref string, status int) provider.KitEvent {
	ev := provider.Event{Ref: ref, Key: "status:" + strconv.Itoa(status), Status: StatusName(status)}
	switch status {
	case StatusVerified, StatusApproved:
		ev.Result = provider.ResultVerified
	case StatusNotVerified, StatusRejected:
		ev.Result = provider.ResultFailed
	}
	return provider.KitEvent{Event: ev, Decision: ev.Result != ""}
}

// readStatus reads a session's status from the results API, with the API key.
func (p *Regula) readStatus(ctx context.Context, id string) (int, error) {
	if !sessionIDRe.MatchString(id) {
		return 0, provider.Errorf(http.StatusBadRequest, "malformed sessionId")
	}
	var out struct {
		Status *int `json:"status"`
	}
	if _, err := p.up.Do(ctx, upstream.Request{Op: "api/sessions/{id}", Method: http.MethodGet, Path: "/api/sessions/" + id,
		Header: http.Header{"Authorization": {p.resultsKey}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("sessionId", id)}}, &out); err != nil {
		return 0, err
	}
	if out.Status == nil {
		return 0, upstream.ErrMalformed
	}
	return *out.Status, nil
}

// RefreshEvent implements provider.EventRefresher: Regula's webhooks are
// not published, so the core can ask the results API instead. A session
// not yet completed is nothing new.
func (p *Regula) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	if s.Provider != Name || s.Ref == "" {
		return provider.KitEvent{}, nil
	}
	status, err := p.readStatus(ctx, s.Ref)
	if err != nil || status == StatusNotCompleted {
		return provider.KitEvent{}, err
	}
	return eventOf(s.Ref, status), nil
}
