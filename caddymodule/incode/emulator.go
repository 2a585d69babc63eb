package incode

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// Emulator emulates Incode's Omni API (module ID idv.sandbox.incode). It
// checks credentials as the real API does (403 without a valid API key, 401
// without a valid, unexpired token, 400 for a missing field), and serves a
// hosted onboarding page where a person picks "pass" or "fail".
type Emulator struct {
	// APIKey, FlowID and ClientID are what the emulated account accepts.
	APIKey   string `json:"api_key,omitempty"`
	FlowID   string `json:"flow_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	// AdminEmail and AdminPassword are the executive login (optional).
	AdminEmail    string `json:"admin_email,omitempty"`
	AdminPassword string `json:"admin_password,omitempty"`
	// TokenTTL is the session tokens' lifetime. Default: 90d.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// ExecutiveTokenTTL is the executive tokens' lifetime. Default: 24h.
	ExecutiveTokenTTL caddy.Duration `json:"executive_token_ttl,omitempty"`
	// PublicURL is the sandbox's address as a browser reaches it, used in
	// onboarding URLs. Default: taken from each request's Host.
	PublicURL string `json:"public_url,omitempty"`
	// Webhooks delivers onboarding-status notifications.
	Webhooks sandbox.Webhooks `json:"webhooks,omitempty"`

	host *sandbox.Host
	kit  *sandbox.Kit
	st   *emuState
}

type interview struct {
	ID, Code, FlowID, ClientID, ExternalID, RedirectURL string
	Status, ScoreStatus                                 string
	Approved                                            bool
	Language                                            string
	CustomFields                                        map[string]any
}

type emuState struct {
	mu         sync.Mutex
	interviews map[string]*interview // by id
	codes      map[string]string     // onboarding code -> id
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.incode", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the sandbox's incode block. Syntax:
//
//	incode {
//		api_key        <key>
//		flow_id        <id>
//		client_id      <id>
//		admin_email    <email>          # optional
//		admin_password <password>       # optional
//		token_ttl      <duration>       # default 90d
//		executive_token_ttl <duration>  # default 24h
//		public_url     <url>            # default: from the request
//		webhook_url    <url>
//		webhook_auth   header <name> <value> | basic <user> <password> | oauth2 <id> <secret> <token_url>
//		webhook_retry  <first> <factor> <attempts>   # default 200ms 2.5 5
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return sandbox.ParseBlock(d, "idv_sandbox incode", e.Webhooks.Options(map[string]provider.Option{
		"api_key": provider.String(&e.APIKey), "flow_id": provider.String(&e.FlowID), "client_id": provider.String(&e.ClientID),
		"admin_email": provider.String(&e.AdminEmail), "admin_password": provider.String(&e.AdminPassword),
		"public_url": provider.String(&e.PublicURL),
		"token_ttl":  sandbox.DurationOption(&e.TokenTTL), "executive_token_ttl": sandbox.DurationOption(&e.ExecutiveTokenTTL),
	}))
}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(ctx caddy.Context, h *sandbox.Host) error {
	sandbox.Resolve(false, append([]*string{&e.APIKey, &e.FlowID, &e.ClientID, &e.AdminEmail, &e.AdminPassword, &e.PublicURL},
		e.Webhooks.Fields()...)...)
	if e.APIKey == "" || e.FlowID == "" || e.ClientID == "" {
		return errors.New("api_key, flow_id and client_id are required")
	}
	if e.TokenTTL == 0 {
		e.TokenTTL = caddy.Duration(90 * 24 * time.Hour)
	}
	if e.ExecutiveTokenTTL == 0 {
		e.ExecutiveTokenTTL = caddy.Duration(24 * time.Hour)
	}
	e.host = h
	e.st = h.Shared("incode", func() any {
		return &emuState{interviews: map[string]*interview{}, codes: map[string]string{}}
	}).(*emuState)
	// Each call is counted and faulted before its method is checked (a
	// refused method is counted too), as this emulator always did.
	e.kit = &sandbox.Kit{Provider: "incode", Host: h, RecordRefused: true, MethodMessage: "method not allowed",
		Caller: func(r *http.Request, _ *sandbox.KitRoute) sandbox.Caller {
			c := e.creds(r)
			return sandbox.Caller{Cred: c.String(), APIKey: c.keyGiven, Executive: c.tokKind == "executive"}
		}, Routes: e.routes()}
	return nil
}

// creds classifies the credentials of a call, for checks and counters.
type creds struct {
	keyGiven, keyOK bool
	tokKind         string // "", "session", "executive", "invalid", "expired"
	interviewID     string
}

func (c creds) String() string {
	// Joined by hand: this labels every call, and a slice would escape.
	key, tok := "", ""
	switch {
	case c.keyOK:
		key = sandbox.CredAPIKey
	case c.keyGiven:
		key = "invalid_api_key"
	}
	switch c.tokKind {
	case "session":
		tok = sandbox.CredSession
	case "executive":
		tok = sandbox.CredExecutive
	case "":
	default:
		tok = c.tokKind + "_token"
	}
	switch {
	case key == "" && tok == "":
		return sandbox.CredNone
	case key == "" || tok == "":
		return key + tok
	}
	return key + "+" + tok
}

func (e *Emulator) creds(r *http.Request) creds {
	var c creds
	if k := r.Header.Get("X-Api-Key"); k != "" {
		c.keyGiven = true
		c.keyOK = k == e.APIKey
	}
	if tok := r.Header.Get("X-Incode-Hardware-Id"); tok != "" {
		claims, err := e.host.Signer.Verify(tok)
		switch {
		case errors.Is(err, sandbox.ErrTokenExpired):
			c.tokKind = "expired"
		case err != nil:
			c.tokKind = "invalid"
		default:
			c.tokKind, _ = claims["typ"].(string)
			c.interviewID, _ = claims["sub"].(string)
		}
	}
	return c
}

// apiErr answers in Incode's (Spring Boot) error shape:
// {"timestamp", "status", "error", "message", "path"}.
func apiErr(w http.ResponseWriter, r *http.Request, status int, msg string) {
	sandbox.WriteJSON(w, status, sandbox.APIError(status, msg, r.URL.Path))
}

func (e *Emulator) routes() []sandbox.KitRoute {
	post, get := []string{http.MethodPost}, []string{http.MethodGet}
	// with hands a route its call's credentials.
	with := func(f func(w http.ResponseWriter, r *http.Request, c creds)) func(http.ResponseWriter, *http.Request, map[string]string) {
		return func(w http.ResponseWriter, r *http.Request, _ map[string]string) { f(w, r, e.creds(r)) }
	}
	return []sandbox.KitRoute{
		{Pattern: "/incode/flow/*", Handle: e.hosted}, // the hosted page, no API call
		{Methods: post, Pattern: "/omni/start", Op: "omni/start", Handle: with(e.start)},
		{Methods: post, Pattern: "/executive/log-in", Op: "executive/log-in", Handle: with(e.login)},
		{Methods: get, Pattern: "/0/omni/onboarding-url", Op: "0/omni/onboarding-url", Handle: with(e.onboardingURL)},
		{Methods: get, Pattern: "/omni/get/onboarding/status", Op: "omni/get/onboarding/status", Handle: with(e.onboardingStatus)},
		{Methods: get, Pattern: "/omni/get/score", Op: "omni/get/score", Handle: with(e.score)},
		{Methods: get, Pattern: "/0/omni/get/score", Op: "0/omni/get/score", Handle: with(e.score)},
		{Methods: get, Pattern: "/omni/finish-status", Op: "omni/finish-status", Handle: with(e.finishStatus)},
		{Methods: get, Pattern: "/0/omni/finish-status", Op: "0/omni/finish-status", Handle: with(e.finishStatus)},
		{Methods: post, Pattern: "/omni/process/approve", Op: "omni/process/approve", Handle: with(e.approve)},
		{Methods: post, Pattern: "/omni/authentication/verify", Op: "omni/authentication/verify", Handle: with(e.verify)},
		{Methods: post, Pattern: "/omni/auth-attempt/verify", Op: "omni/auth-attempt/verify", Handle: with(e.verify)},
		{Pattern: "/0/omni/*", Op: "0/omni/*", Handle: with(e.generic)},
		{Pattern: "/omni/*", Op: "omni/*", Handle: with(e.generic)},
	}
}

// ServeSandbox implements sandbox.Emulator.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	return e.kit.Serve(w, r)
}

func (e *Emulator) requireKey(w http.ResponseWriter, r *http.Request, c creds) bool {
	if !c.keyOK {
		apiErr(w, r, http.StatusForbidden, "missing or invalid x-api-key")
		return false
	}
	return true
}

func (e *Emulator) requireToken(w http.ResponseWriter, r *http.Request, c creds, kinds ...string) bool {
	for _, k := range kinds {
		if c.tokKind == k {
			return true
		}
	}
	apiErr(w, r, http.StatusUnauthorized, "missing, invalid or expired X-Incode-Hardware-Id token")
	return false
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		apiErr(w, r, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}

func (e *Emulator) start(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireKey(w, r, c) {
		return
	}
	var in struct {
		ConfigurationID    string         `json:"configurationId"`
		CountryCode        string         `json:"countryCode"`
		Language           string         `json:"language"`
		RedirectionURL     string         `json:"redirectionUrl"`
		ExternalCustomerID string         `json:"externalCustomerId"`
		CustomFields       map[string]any `json:"customFields"`
	}
	if !decode(w, r, &in) {
		return
	}
	// countryCode is optional: backend-nodejs sends only configurationId
	// and language.
	if in.ConfigurationID == "" {
		apiErr(w, r, http.StatusBadRequest, "configurationId is required")
		return
	}
	if in.ConfigurationID != e.FlowID {
		apiErr(w, r, http.StatusBadRequest, "unknown configurationId")
		return
	}
	iv := &interview{ID: sandbox.RandomHex(12), Code: sandbox.RandomHex(16), FlowID: in.ConfigurationID, ClientID: e.ClientID,
		ExternalID: in.ExternalCustomerID, RedirectURL: in.RedirectionURL, Status: "UNKNOWN",
		Language: in.Language, CustomFields: in.CustomFields}
	e.st.mu.Lock()
	e.st.interviews[iv.ID] = iv
	e.st.codes[iv.Code] = iv.ID
	e.st.mu.Unlock()
	tok := e.host.Signer.Mint(jwt.MapClaims{"sub": iv.ID, "typ": "session"}, time.Duration(e.TokenTTL))
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "interviewId": iv.ID, "clientId": e.ClientID,
		"interviewCode": iv.Code[:6], "flowType": "flow", "env": "sandbox", "existingSession": false})
}

func (e *Emulator) login(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireKey(w, r, c) {
		return
	}
	var in struct{ Email, Password string }
	if !decode(w, r, &in) {
		return
	}
	if in.Email == "" || in.Password == "" {
		apiErr(w, r, http.StatusBadRequest, "email and password are required")
		return
	}
	if e.AdminEmail == "" || in.Email != e.AdminEmail || in.Password != e.AdminPassword {
		apiErr(w, r, http.StatusUnauthorized, "wrong email or password")
		return
	}
	tok := e.host.Signer.Mint(jwt.MapClaims{"sub": in.Email, "typ": "executive"}, time.Duration(e.ExecutiveTokenTTL))
	sandbox.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (e *Emulator) interview(id string) *interview {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	return e.st.interviews[id]
}

func (e *Emulator) onboardingURL(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireToken(w, r, c, "session") {
		return
	}
	// clientId is optional: backend-nodejs sends none, python-samples
	// sends it (with the API key too, which a /0/ call ignores).
	// (Parsed only when there is a query: the idv handler sends none.)
	if r.URL.RawQuery != "" {
		if cid := r.URL.Query().Get("clientId"); cid != "" && cid != e.ClientID {
			apiErr(w, r, http.StatusBadRequest, "unknown clientId")
			return
		}
	}
	iv := e.interview(c.interviewID)
	if iv == nil {
		apiErr(w, r, http.StatusUnauthorized, "the token's interview does not exist")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]string{"url": sandbox.PublicURL(e.PublicURL, r) + "/incode/flow/" + iv.Code})
}

// interviewFor resolves the interview of an executive call (?id= or
// ?interviewId=) or a session call (the token's interview).
func (e *Emulator) interviewFor(w http.ResponseWriter, r *http.Request, c creds, param string) *interview {
	id := c.interviewID
	if c.tokKind == "executive" {
		id = r.URL.Query().Get(param)
		if id == "" {
			apiErr(w, r, http.StatusBadRequest, param+" is required")
			return nil
		}
	}
	iv := e.interview(id)
	if iv == nil {
		apiErr(w, r, http.StatusNotFound, "interview not found")
	}
	return iv
}

func (e *Emulator) onboardingStatus(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireKey(w, r, c) || !e.requireToken(w, r, c, "executive") {
		return
	}
	if iv := e.interviewFor(w, r, c, "id"); iv != nil {
		e.st.mu.Lock()
		st := iv.Status
		e.st.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusOK, map[string]string{"onboardingStatus": st})
	}
}

func (e *Emulator) score(w http.ResponseWriter, r *http.Request, c creds) {
	// The real API accepts the key beside the token here: backend-nodejs
	// /fetch-score sends key + session token to /omni/get/score, its
	// /approve the executive token alone, python-samples key + either.
	if strings.HasPrefix(r.URL.Path, "/0/") {
		if !e.requireToken(w, r, c, "session") {
			return
		}
	} else {
		if c.keyGiven && !c.keyOK {
			apiErr(w, r, http.StatusForbidden, "missing or invalid x-api-key")
			return
		}
		if !e.requireToken(w, r, c, "executive", "session") {
			return
		}
	}
	iv := e.interviewFor(w, r, c, "id")
	if iv == nil {
		return
	}
	e.st.mu.Lock()
	status := iv.ScoreStatus
	e.st.mu.Unlock()
	if status == "" {
		status = "UNKNOWN"
	}
	value := map[string]string{"OK": "95.0", "FAIL": "12.0"}[status]
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{
		"overall":      map[string]string{"value": value, "status": status},
		"idValidation": map[string]any{"overall": map[string]string{"value": value, "status": status}},
	})
}

// finish marks an interview finished with a score and sends the webhooks.
func (e *Emulator) finish(iv *interview, scoreStatus string) {
	e.st.mu.Lock()
	already := iv.Status == Finished
	iv.Status = Finished
	if scoreStatus != "" || iv.ScoreStatus == "" {
		iv.ScoreStatus = scoreStatus
	}
	status := func(st string) map[string]any {
		p := map[string]any{"interviewId": iv.ID, "onboardingStatus": st, "clientId": iv.ClientID, "flowId": iv.FlowID}
		if iv.ExternalID != "" {
			p["externalId"] = iv.ExternalID
		}
		return p
	}
	// The steps' webhooks come first, as Incode sends them: onboarding
	// statuses, then a session webhook (its payload is not published: the
	// shape here is an assumption, see docs/providers/incode.md).
	payloads := []map[string]any{status("ID_VALIDATION_FINISHED"), status("FACE_VALIDATION_FINISHED")}
	if outcome := map[string]string{"OK": "SESSION_SUCCEEDED", "FAIL": "SESSION_FAILED", "WARN": "SESSION_PENDING_REVIEW"}[iv.ScoreStatus]; outcome != "" {
		payloads = append(payloads, map[string]any{"eventType": outcome, "interviewId": iv.ID, "clientId": iv.ClientID, "flowId": iv.FlowID})
	}
	payloads = append(payloads, status(Finished))
	e.st.mu.Unlock()
	if !already {
		sandbox.InOrder(payloads, func(p map[string]any, done chan<- error) { e.Webhooks.Send(e.host.Logger, p, done) })
	}
}

func (e *Emulator) finishStatus(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireToken(w, r, c, "session") {
		return
	}
	iv := e.interview(c.interviewID)
	if iv == nil {
		apiErr(w, r, http.StatusNotFound, "interview not found")
		return
	}
	e.finish(iv, "")
	sandbox.WriteJSON(w, http.StatusOK, map[string]string{"redirectionUrl": iv.RedirectURL, "action": "none"})
}

func (e *Emulator) approve(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireToken(w, r, c, "executive") {
		return
	}
	iv := e.interviewFor(w, r, c, "interviewId")
	if iv == nil {
		return
	}
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if iv.Status != Finished {
		apiErr(w, r, http.StatusBadRequest, "the onboarding is not finished")
		return
	}
	existing := iv.Approved
	iv.Approved = true
	sum := sha256.Sum256([]byte(iv.ID))
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "uuid": hex.EncodeToString(sum[:16]),
		"token":      e.host.Signer.Mint(jwt.MapClaims{"sub": iv.ID, "typ": "customer"}, time.Duration(e.TokenTTL)),
		"totalScore": iv.ScoreStatus, "existingCustomer": existing})
}

func (e *Emulator) verify(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.requireKey(w, r, c) {
		return
	}
	// /omni/auth-attempt/verify takes the API key alone (backend-php), or
	// with a session token (python-samples); the newer endpoint the
	// executive token (backend-nodejs, backend-java).
	if r.URL.Path == "/omni/authentication/verify" && !e.requireToken(w, r, c, "executive") {
		return
	}
	var in struct {
		TransactionID  string `json:"transactionId"`
		Token          string `json:"token"`
		InterviewToken string `json:"interviewToken"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.TransactionID == "" || in.Token == "" || in.InterviewToken == "" {
		apiErr(w, r, http.StatusBadRequest, "transactionId, token and interviewToken are required")
		return
	}
	_, err := e.host.Signer.Verify(in.InterviewToken)
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"verified": err == nil, "transactionId": in.TransactionID})
}

// generic answers any other /0/omni/ call made with a session token: it
// reads the whole body and reports its size and digest, so tests can check
// that uploads stream through intact.
func (e *Emulator) generic(w http.ResponseWriter, r *http.Request, c creds) {
	if !strings.HasPrefix(r.URL.Path, "/0/") && !e.requireKey(w, r, c) {
		return
	}
	if !e.requireToken(w, r, c, "session", "executive") {
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		apiErr(w, r, http.StatusBadRequest, "could not read the body")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "path": r.URL.EscapedPath(), "query": r.URL.RawQuery,
		"method": r.Method, "bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
}

var flowPage = sandbox.NewPage(`{{with .Data}}<p>This page stands in for Incode's hosted onboarding. Interview <code>{{.ID}}</code>.</p>
{{if .Custom}}<p>Custom fields: <code id="custom-fields">{{.Custom}}</code></p>{{end}}
{{if .Done}}<p id="done" class="notice">This onboarding is already finished (score {{.Score}}).</p>{{else}}
<form method="post">
<fieldset><legend>Outcome of this verification</legend>
<label><input type="radio" name="outcome" value="pass" id="outcome-pass" checked> Pass (score OK)</label>
<label><input type="radio" name="outcome" value="fail" id="outcome-fail"> Fail (score FAIL)</label>
<label><input type="radio" name="outcome" value="warn" id="outcome-warn"> Warn (score WARN: needs a review)</label>
</fieldset>
<button type="submit" id="submit">Finish verification</button>
</form>{{end}}{{end}}`)

// hosted serves the sandbox's stand-in for Incode's hosted onboarding:
// GET shows a form, POST finishes the interview with the chosen score, sends
// the webhook and redirects to the session's redirectionUrl.
func (e *Emulator) hosted(w http.ResponseWriter, r *http.Request, p map[string]string) {
	code := p["*"]
	e.st.mu.Lock()
	iv := e.st.interviews[e.st.codes[code]]
	e.st.mu.Unlock()
	if iv == nil {
		sandbox.WriteNotice(w, http.StatusNotFound, sandbox.Notice{Provider: "Incode", ID: "error", Error: true, Message: "Unknown onboarding link."})
		return
	}
	e.host.Calls.Record("incode", "hosted-flow "+r.Method, sandbox.CredNone)
	switch r.Method {
	case http.MethodGet:
		e.st.mu.Lock()
		lang := iv.Language
		if lang == "" {
			lang = "en"
		}
		custom := ""
		if len(iv.CustomFields) > 0 {
			b, _ := json.Marshal(iv.CustomFields)
			custom = string(b)
		}
		data := map[string]any{"ID": iv.ID, "Done": iv.Status == Finished, "Score": iv.ScoreStatus, "Lang": lang, "Custom": custom}
		e.st.mu.Unlock()
		sandbox.RenderPage(w, http.StatusOK, flowPage, sandbox.PageData{Provider: "Incode", Title: "verification", Lang: lang, Data: data})
	case http.MethodPost:
		score := map[string]string{"pass": "OK", "warn": "WARN"}[r.PostFormValue("outcome")]
		if score == "" {
			score = "FAIL"
		}
		e.finish(iv, score)
		target := iv.RedirectURL
		if u, err := url.Parse(target); target == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			sandbox.WriteNotice(w, http.StatusOK, sandbox.Notice{Provider: "Incode", ID: "done", Message: "Verification finished."})
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
	}
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
