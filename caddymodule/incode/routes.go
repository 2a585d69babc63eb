package incode

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

const execKey = "incode:executive"

// Routes implements provider.Provider.
func (p *Incode) Routes() []provider.Route {
	get, post := []string{http.MethodGet}, []string{http.MethodPost}
	routes := []provider.Route{
		{Path: "/start", Methods: get, Kind: provider.StartSession},
		{Path: "/onboarding-url", Methods: get, Kind: provider.StartSession},
		{Path: "/onboarding-url-without-api-key", Methods: get, Kind: provider.StartSession},
		{Path: "/onboarding-status", Methods: get, Handle: p.serveOnboardingStatus},
		{Path: "/fetch-score", Methods: get, Handle: p.serveFetchScore, ClientHeaders: []string{"X-Token"}},
		{Path: "/auth", Methods: post, Handle: p.serveAuth},
		{Path: "/finish", Methods: post, Handle: p.serveFinish},
		{Path: "/webhook", Methods: post, Kind: provider.SignedWebhook},
		{Path: "/approve", Methods: post, Kind: provider.SignedWebhook},
		{Path: "/0/omni/", Subtree: true, Kind: provider.Passthrough, Forward: p.forward(), ClientHeaders: []string{"api-version"}},
		{Path: "/omni/", Subtree: true, Kind: provider.Passthrough, Forward: p.forward(), ClientHeaders: []string{"api-version"}},
	}
	if p.ExposeExecutiveToken {
		routes = append(routes, provider.Route{Path: "/executive-token", Methods: get, Handle: p.serveExecutiveToken})
	}
	return routes
}

// executive returns the executive token: the static admin_token, or one
// logged in once and cached until shortly before its expiry.
func (p *Incode) executive(ctx context.Context) (string, error) {
	if p.email == "" && p.static == "" {
		return "", provider.Errorf(http.StatusNotImplemented, "no executive credentials are configured (admin_email and admin_password, or admin_token)")
	}
	if p.static != "" {
		return p.static, nil
	}
	return p.host.Tokens.Get(ctx, execKey, p.login)
}

func (p *Incode) login(ctx context.Context) (string, time.Time, error) {
	h := p.headers("")
	h.Set("X-Api-Key", p.key)
	var out struct {
		Token string `json:"token"`
	}
	_, err := p.up.Do(ctx, upstream.Request{Op: "executive/log-in", Method: http.MethodPost, Path: "/executive/log-in",
		Header: h, Body: map[string]string{"email": p.email, "password": p.password}}, &out)
	if err != nil {
		return "", time.Time{}, err
	}
	if out.Token == "" {
		return "", time.Time{}, upstream.ErrMalformed
	}
	exp, ok := jwtExpiry(out.Token)
	if !ok {
		exp = p.host.Now().Add(24 * time.Hour)
	}
	switch {
	case p.host.RedactUntil != nil:
		p.host.RedactUntil(out.Token, exp)
	case p.host.Redact != nil:
		p.host.Redact(out.Token)
	}
	p.relogin.Lock()
	p.relogin.token = out.Token
	p.relogin.Unlock()
	return out.Token, exp, nil
}

// ReloginEvery is the least time between two executive logins caused by a
// provider 401: a 401 that one interview causes (a chosen, foreign or
// deleted interviewId) must not make every request log in again.
var ReloginEvery = 5 * time.Second

// mayRelogin reports whether the executive token tok, refused with a 401,
// should be dropped for a fresh login: only the current token (one login
// per token generation; concurrent refusals of it share one) and only when
// the last login a 401 caused is older than ReloginEvery.
func (p *Incode) mayRelogin(tok string) bool {
	p.relogin.Lock()
	defer p.relogin.Unlock()
	if p.relogin.token != "" && p.relogin.token != tok {
		return true // replaced by a login since: retry with that one
	}
	if !p.relogin.last.IsZero() && time.Since(p.relogin.last) < ReloginEvery {
		return false
	}
	p.relogin.last = time.Now()
	p.host.Tokens.Drop(execKey, tok)
	return true
}

// withExecutive makes a call with the executive token and the API key. An
// upstream 401 drops the cached token and retries once with a fresh one,
// at most once per ReloginEvery; a token another request has already
// replaced is retried without a login.
func (p *Incode) withExecutive(ctx context.Context, req upstream.Request, out any) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := p.executive(ctx)
		if err != nil {
			return nil, err
		}
		req.Header = p.headers(tok)
		req.Header.Set("X-Api-Key", p.key)
		body, err := p.up.Do(ctx, req, out)
		if upstream.Status(err) == http.StatusUnauthorized && attempt == 0 && p.static == "" {
			if p.mayRelogin(tok) {
				continue
			}
		}
		return body, err
	}
}

// startBody is the body of /omni/start for in, checked: the language,
// customFields (when allowed) and externalCustomerId a request may give.
func (p *Incode) startBody(in provider.StartInput) (map[string]any, error) {
	body := map[string]any{"configurationId": p.flow, "countryCode": p.country, "language": p.language}
	if in.Language != "" {
		if !languageTag.MatchString(in.Language) {
			return nil, provider.Errorf(http.StatusBadRequest, "language must be a language tag such as en-US")
		}
		body["language"] = in.Language
	}
	if raw := in.Params.Get("customFields"); raw != "" {
		if !p.AllowCustomFields {
			return nil, provider.Errorf(http.StatusBadRequest, "customFields are not accepted: allow_custom_fields is off")
		}
		if len(raw) > 4096 {
			return nil, provider.Errorf(http.StatusBadRequest, "customFields is longer than 4096 bytes")
		}
		var cf map[string]json.RawMessage
		if err := provider.DecodeJSONBytes([]byte(raw), &cf, true); err != nil || cf == nil {
			return nil, provider.Errorf(http.StatusBadRequest, "customFields must be a JSON object%s", reason(err))
		}
		body["customFields"] = json.RawMessage(raw) // as given: numbers keep their precision
	}
	if in.RedirectURL != "" { // checked by the core
		body["redirectionUrl"] = in.RedirectURL
	}
	if ext := in.Params.Get("externalCustomerId"); ext != "" {
		if len(ext) > 256 {
			return nil, provider.Errorf(http.StatusBadRequest, "externalCustomerId is longer than 256 characters")
		}
		body["externalCustomerId"] = ext
	}
	return body, nil
}

// CheckStart implements provider.StartChecker: Incode's own fields are
// refused before the quota is spent.
func (p *Incode) CheckStart(in provider.StartInput) error {
	_, err := p.startBody(in)
	return err
}

// Start implements provider.Starter: /omni/start with the API key, and on
// the onboarding-url routes the session's onboarding URL, fetched before
// the session is stored so that it is written once.
func (p *Incode) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	body, err := p.startBody(in)
	if err != nil {
		return provider.StartResult{}, err
	}
	h := p.headers("")
	h.Set("X-Api-Key", p.key)
	var out struct {
		Token       string `json:"token"`
		InterviewID string `json:"interviewId"`
		ClientID    string `json:"clientId"`
	}
	// Not idempotent: never retried, so one /start is one provider session.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "omni/start", Method: http.MethodPost, Path: "/omni/start", Header: h, Body: body}, &out); err != nil {
		return provider.StartResult{}, err
	}
	if out.Token == "" || out.InterviewID == "" {
		return provider.StartResult{}, upstream.ErrMalformed
	}
	res := provider.StartResult{Ref: out.InterviewID, Token: out.Token}
	if exp, ok := jwtExpiry(out.Token); ok {
		res.ExpiresAt = exp
	}
	if in.RedirectURL != "" {
		res.Meta = map[string]string{"redirectionUrl": in.RedirectURL}
	}
	if p.client == "" && out.ClientID != "" {
		if res.Meta == nil {
			res.Meta = map[string]string{}
		}
		res.Meta["clientId"] = out.ClientID
	}
	if in.Route != "/start" {
		// An error here still stores and binds the session: a retry
		// resumes it rather than bills a new one.
		res.URL, err = p.onboardingURL(ctx, res.Token, res.Ref, res.Meta)
	}
	return res, err
}

// ResumeStart implements provider.StartResumer: an onboarding-url route
// asks once for the URL of a session /start began; the core keeps it.
func (p *Incode) ResumeStart(ctx context.Context, route string, s *session.Session) (bool, error) {
	if route == "/start" || s.URL != "" {
		return false, nil
	}
	u, err := p.onboardingURL(ctx, s.Token, s.Ref, s.Meta)
	if err != nil {
		return false, err
	}
	s.URL = u
	return true, nil
}

// StartAnswer implements provider.Starter: /start answers the token (the
// interviewId stays server-side), the onboarding-url routes as Incode's
// samples do.
func (p *Incode) StartAnswer(route string, s *session.Session) map[string]any {
	if route == "/start" {
		return map[string]any{"token": s.Token}
	}
	return map[string]any{"success": true, "token": s.Token, "interviewId": s.Ref, "url": s.URL}
}

// onboardingURL asks for a session's onboarding URL with its session token
// only (meta holds the clientId /omni/start gave, when client_id is unset).
func (p *Incode) onboardingURL(ctx context.Context, token, interviewID string, meta map[string]string) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	client := p.client
	if client == "" {
		client = meta["clientId"]
	}
	var q url.Values
	if client != "" {
		q = url.Values{"clientId": {client}}
	}
	_, err := p.up.Do(ctx, upstream.Request{Op: "0/omni/onboarding-url", Method: http.MethodGet, Path: "/0/omni/onboarding-url",
		Query: q, Header: p.headers(token), Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", interviewID)}}, &out)
	if err != nil {
		return "", err
	}
	if out.URL == "" {
		return "", upstream.ErrMalformed
	}
	return out.URL, nil
}

func (p *Incode) serveOnboardingStatus(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("interviewId")
	if err := provider.RequireString("interviewId", id); err != nil {
		return err
	}
	var out struct {
		OnboardingStatus string `json:"onboardingStatus"`
	}
	if _, err := p.withExecutive(r.Context(), upstream.Request{Op: "omni/get/onboarding/status", Method: http.MethodGet,
		Path: "/omni/get/onboarding/status", Query: url.Values{"id": {id}}, Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", id)}}, &out); err != nil {
		return upstream.ClientError(err)
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "onboardingStatus": out.OnboardingStatus})
	return nil
}

// Score is the part of Incode's score answer the routes use.
type Score struct {
	Overall struct {
		Value  string `json:"value"`
		Status string `json:"status"`
	} `json:"overall"`
}

func (p *Incode) serveFetchScore(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("interviewId")
	if err := provider.RequireString("interviewId", id); err != nil {
		return err
	}
	tok := r.Header.Get("X-Token")
	if err := provider.RequireString("X-Token header", tok); err != nil {
		return err
	}
	var sc Score
	if _, err := p.up.Do(r.Context(), upstream.Request{Op: "0/omni/get/score", Method: http.MethodGet, Path: "/0/omni/get/score",
		Query: url.Values{"id": {id}}, Header: p.headers(tok), Idempotent: true,
		LogFields: []zap.Field{zap.String("interviewId", id)}}, &sc); err != nil {
		return upstream.ClientError(err)
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "score": sc.Overall.Status})
	return nil
}

func (p *Incode) serveAuth(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		TransactionID  string `json:"transactionId"`
		Token          string `json:"token"`
		InterviewToken string `json:"interviewToken"`
	}
	if err := provider.DecodeJSON(r, &in, true); err != nil {
		return err
	}
	for _, f := range [][2]string{{"transactionId", in.TransactionID}, {"token", in.Token}, {"interviewToken", in.InterviewToken}} {
		if err := provider.RequireString(f[0], f[1]); err != nil {
			return err
		}
	}
	var body []byte
	var err error
	if p.email != "" || p.static != "" {
		// backend-nodejs and backend-java: the executive token and the key.
		body, err = p.withExecutive(r.Context(), upstream.Request{Op: "omni/authentication/verify", Method: http.MethodPost,
			Path: "/omni/authentication/verify", Body: in}, nil)
	} else {
		// backend-php (index.php) and python-samples (Session.py): the API
		// key alone, on the older endpoint.
		h := p.headers("")
		h.Set("X-Api-Key", p.key)
		body, err = p.up.Do(r.Context(), upstream.Request{Op: "omni/auth-attempt/verify", Method: http.MethodPost,
			Path: "/omni/auth-attempt/verify", Header: h, Body: in}, nil)
	}
	if err != nil {
		return upstream.ClientError(err)
	}
	return writeUpstreamJSON(w, body)
}

// reason renders a decoding error's message after a colon, or nothing.
func reason(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return ": " + pe.Msg
	}
	return ""
}

func (p *Incode) serveFinish(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Token string `json:"token"`
	}
	if err := provider.DecodeJSON(r, &in, true); err != nil {
		return err
	}
	if err := provider.RequireString("token", in.Token); err != nil {
		return err
	}
	body, err := p.up.Do(r.Context(), upstream.Request{Op: "0/omni/finish-status", Method: http.MethodGet, Path: "/0/omni/finish-status",
		Header: p.headers(in.Token), Idempotent: true}, nil)
	if err != nil {
		return upstream.ClientError(err)
	}
	return writeUpstreamJSON(w, body)
}

// writeUpstreamJSON passes a provider's JSON answer on as it is, after
// checking it is JSON.
func writeUpstreamJSON(w http.ResponseWriter, body []byte) error {
	if !json.Valid(body) {
		return upstream.ClientError(upstream.ErrMalformed)
	}
	provider.WriteJSON(w, http.StatusOK, json.RawMessage(body))
	return nil
}

func (p *Incode) serveExecutiveToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := p.executive(r.Context())
	if err != nil {
		return upstream.ClientError(err)
	}
	provider.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
	return nil
}

// forward declares /api/0/omni/* and /api/omni/*: forwarded to
// <api_url>/0/omni/* with the browser's session token (its own header, or
// its session cookie's) and nothing else of its credentials. The SDK calls
// many endpoints there, all with the session's own token: every path.
func (p *Incode) forward() *provider.Forward {
	return &provider.Forward{
		Rules:       []provider.PathRule{provider.AllowAll},
		TokenHeader: "X-Incode-Hardware-Id",
		Credential:  p.headers,
		NoSession:   "no session token: send X-Incode-Hardware-Id or start a session first",
		Proxy:       p.proxy,
	}
}
