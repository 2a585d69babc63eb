package regula

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// Emulator emulates a Regula IDV platform (module ID idv.sandbox.regula).
//
// Regula publishes neither its error bodies nor its webhooks, so the
// emulator picks: 401 for a missing, wrong, invalid or expired credential
// (an API key in another scheme than the call's page shows included), 403
// for a valid credential that may not do the call (an API key without the
// call's permission or starting a session itself, a token reading another
// device's session), 400 for a missing or wrong field, 404 for an unknown
// session, with the body {"code": <status>, "message": <text>} (see
// ErrorBody). Ephemeral tokens are JWTs with a real exp, returned as
// "Token <jwt>" to be used verbatim, as Regula's deep links show them.
//
// Routes: POST /api/device/ephemeral, POST /api/sessions?workflowId=,
// POST /api/v1/deeplink?workflowId=, GET /api/sessions/<id>, any other
// /api/* (an echo for passthrough tests), and the hosted pages GET|POST
// /capture?url= and /mobile?authorization=&sessionId=. Calls are counted,
// and faults matched, under the ops "api/device/ephemeral", "api/sessions",
// "api/v1/deeplink", "api/sessions/{id}", "api/*", "capture GET",
// "capture POST", "mobile GET" and "mobile POST", with the credential
// api_key, ephemeral_token, expired_token, invalid or none.
type Emulator struct {
	// APIKey and WorkflowID are what the emulated account accepts.
	APIKey     string `json:"api_key,omitempty"`
	WorkflowID string `json:"workflow_id,omitempty"`
	// APIKeyScheme is the scheme the API key must come with on
	// /api/device/ephemeral ("" for the key alone, as the seed page shows;
	// "ApiKey" for "ApiKey <key>").
	APIKeyScheme string `json:"api_key_scheme,omitempty"`
	// ResultsKeyScheme is the scheme the API key must come with on the
	// results API: "ApiKey" (as Regula's results examples show) or "none"
	// (the key alone). Default: either is accepted, since the pages
	// disagree. The deeplink call takes "ApiKey <key>" only, as its page
	// shows.
	ResultsKeyScheme string `json:"results_key_scheme,omitempty"`
	// Permissions are the API key's permissions, in Regula's scope:operation
	// form: ephemeral_device:write (POST /api/device/ephemeral),
	// deeplink:write (POST /api/v1/deeplink), session_all:read (the results
	// API). Default: all three.
	Permissions []string `json:"api_key_permissions,omitempty"`
	// MaxTTL is the longest ephemeral token lifetime granted. Default: 24h.
	MaxTTL caddy.Duration `json:"max_ttl,omitempty"`
	// PublicURL is the platform's address as a browser reaches it: the
	// capture page refuses a handoff link to any other host. Default: taken
	// from each request's Host.
	PublicURL string `json:"public_url,omitempty"`
	// Webhooks delivers {"sessionId", "status"} when a session completes.
	Webhooks sandbox.Webhooks `json:"webhooks,omitempty"`

	resultsScheme string
	perms         map[string]bool
	host          *sandbox.Host
	kit           *sandbox.Kit
	schemes       map[string]string // the API key's scheme by op
	st            *emuState
}

type emuSession struct {
	ID, WorkflowID, Device string
	Status                 int
	Metadata               map[string]any
	CreatedAt, CompletedAt time.Time
}

type emuState struct {
	mu       sync.Mutex
	sessions map[string]*emuSession // by id
	byDevice map[string][]string    // ephemeral device -> session ids
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.regula", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the sandbox's regula block. Syntax:
//
//	regula {
//		api_key        <key>
//		workflow_id    <id>
//		api_key_scheme <scheme>       # /api/device/ephemeral; default "": the key alone
//		results_key_scheme <scheme>   # results API: ApiKey or none (the key alone); default: either
//		api_key_permissions <perm>... # default ephemeral_device:write deeplink:write session_all:read
//		max_ttl        <duration>     # default 24h
//		public_url     <url>          # default: from the request
//		webhook_url    <url>
//		webhook_auth   header <name> <value> | basic <user> <password> | oauth2 <id> <secret> <token_url>
//		webhook_retry  <first> <factor> <attempts>   # default 200ms 2.5 5
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return sandbox.ParseBlock(d, "idv_sandbox regula", e.Webhooks.Options(map[string]provider.Option{
		"api_key": provider.String(&e.APIKey), "workflow_id": provider.String(&e.WorkflowID),
		"api_key_scheme": provider.String(&e.APIKeyScheme), "results_key_scheme": provider.String(&e.ResultsKeyScheme),
		"public_url": provider.String(&e.PublicURL), "max_ttl": sandbox.DurationOption(&e.MaxTTL),
		"api_key_permissions": {Args: -1, Set: func(a []string) error { e.Permissions = a; return nil }},
	}))
}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(ctx caddy.Context, h *sandbox.Host) error {
	sandbox.Resolve(true, append([]*string{&e.APIKey, &e.WorkflowID, &e.APIKeyScheme, &e.ResultsKeyScheme, &e.PublicURL},
		e.Webhooks.Fields()...)...)
	if e.APIKey == "" || e.WorkflowID == "" {
		return errors.New("api_key and workflow_id are required")
	}
	if e.MaxTTL == 0 {
		e.MaxTTL = caddy.Duration(24 * time.Hour)
	}
	if e.MaxTTL < caddy.Duration(time.Second) {
		return errors.New("max_ttl must be at least 1s")
	}
	if strings.EqualFold(e.APIKeyScheme, "none") {
		e.APIKeyScheme = ""
	}
	switch {
	case e.ResultsKeyScheme == "":
		e.resultsScheme = anyScheme
	case strings.EqualFold(e.ResultsKeyScheme, "none"):
		e.resultsScheme = ""
	default:
		e.resultsScheme = e.ResultsKeyScheme
	}
	perms := e.Permissions
	if len(perms) == 0 {
		perms = []string{PermEphemeral, PermDeeplink, PermResults}
	}
	e.perms = map[string]bool{}
	for _, p := range perms {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != PermEphemeral && p != PermDeeplink && p != PermResults {
			return fmt.Errorf("api_key_permissions: unknown permission %q (known: %s, %s, %s)", p, PermEphemeral, PermDeeplink, PermResults)
		}
		e.perms[p] = true
	}
	e.host = h
	e.st = h.Shared("regula", func() any {
		return &emuState{sessions: map[string]*emuSession{}, byDevice: map[string][]string{}}
	}).(*emuState)
	e.routes()
	return nil
}

// API key permissions the emulator knows, in Regula's scope:operation form.
const (
	PermEphemeral = "ephemeral_device:write"
	PermDeeplink  = "deeplink:write"
	PermResults   = "session_all:read"
)

// ErrorBody is the emulator's error shape. Regula publishes none for the IDV
// platform: this is an assumption (a status code and a message), documented
// as such in docs/providers/regula.md.
func ErrorBody(status int, msg, _ string) any {
	return map[string]any{"code": status, "message": msg}
}

// Credential kinds of a Regula call, as the sandbox counts them.
const (
	credEphemeral = "ephemeral_token"
	credExpired   = "expired_token"
)

// creds is what a call's Authorization header is.
type creds struct {
	kind   string // sandbox.CredNone, sandbox.CredAPIKey, credEphemeral, credExpired, sandbox.CredInvalid
	device string // the ephemeral token's device
	scheme string // the API key's scheme ("" for the key alone)
	// wrongScheme: the API key came in another scheme than the call takes.
	wrongScheme bool
}

// tokenCreds classifies an ephemeral token as given ("Token <jwt>").
func (e *Emulator) tokenCreds(v string) creds {
	if v == "" {
		return creds{kind: sandbox.CredNone}
	}
	raw, ok := strings.CutPrefix(v, "Token ")
	if !ok {
		return creds{kind: sandbox.CredInvalid}
	}
	claims, err := e.host.Signer.Verify(raw)
	switch {
	case errors.Is(err, sandbox.ErrTokenExpired):
		return creds{kind: credExpired}
	case err != nil || claims["typ"] != "ephemeral":
		return creds{kind: sandbox.CredInvalid}
	}
	dev, _ := claims["sub"].(string)
	return creds{kind: credEphemeral, device: dev}
}

// creds classifies a call's Authorization header. The API key counts as
// the API key only in the scheme the call takes (scheme, or anyScheme): in
// another it is an invalid credential, as on a platform that parses the
// scheme first.
func (e *Emulator) creds(r *http.Request, scheme string) creds {
	auth := r.Header.Get("Authorization")
	got, found := "", false
	if auth != "" && same(auth, e.APIKey) {
		found = true
	} else if sch, k, ok := strings.Cut(auth, " "); ok && sch != "Token" && same(k, e.APIKey) {
		got, found = sch, true
	}
	if found {
		if scheme == anyScheme || strings.EqualFold(got, scheme) {
			return creds{kind: sandbox.CredAPIKey, scheme: got}
		}
		return creds{kind: sandbox.CredInvalid, scheme: got, wrongScheme: true}
	}
	return e.tokenCreds(auth)
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// anyScheme accepts the API key in any scheme or alone.
const anyScheme = "*"

// apiKey answers 401 unless c is the API key (in the call's scheme), and
// 403 unless the key holds perm.
func (e *Emulator) apiKey(w http.ResponseWriter, r *http.Request, c creds, perm string) bool {
	if c.kind != sandbox.CredAPIKey {
		msg := "missing or invalid API key"
		if c.wrongScheme {
			msg = "invalid Authorization: the API key is not in the scheme this call takes"
		}
		apiErr(w, r, http.StatusUnauthorized, msg)
		return false
	}
	if !e.perms[perm] {
		apiErr(w, r, http.StatusForbidden, "the API key lacks the "+perm+" permission")
		return false
	}
	return true
}

// keyLeaked reports whether the API key appears anywhere in the request's
// headers or query, in whatever form: the request log's api_key flag, which
// tests use to prove where the key went. (Substrings are only looked for
// with keys long enough not to match ordinary header values.)
func (e *Emulator) keyLeaked(r *http.Request) bool {
	if len(e.APIKey) < 8 {
		auth := r.Header.Get("Authorization")
		_, key, _ := strings.Cut(auth, " ")
		return auth == e.APIKey || key == e.APIKey
	}
	if strings.Contains(r.URL.RawQuery, e.APIKey) {
		return true
	}
	for _, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, e.APIKey) {
				return true
			}
		}
	}
	return false
}

func apiErr(w http.ResponseWriter, r *http.Request, status int, msg string) {
	sandbox.WriteJSON(w, status, ErrorBody(status, msg, r.URL.Path))
}

// routes sets up the kit: each call is counted (with its credential in the
// scheme its route takes) and faulted before its method is checked, as this
// emulator always did.
func (e *Emulator) routes() {
	post, get := []string{http.MethodPost}, []string{http.MethodGet}
	e.schemes = map[string]string{}
	var routes []sandbox.KitRoute
	api := func(methods []string, pattern, op, scheme string, f func(http.ResponseWriter, *http.Request, creds)) {
		e.schemes[op] = scheme
		routes = append(routes, sandbox.KitRoute{Methods: methods, Pattern: pattern, Op: op,
			Handle: func(w http.ResponseWriter, r *http.Request, _ map[string]string) { f(w, r, e.creds(r, scheme)) }})
	}
	routes = append(routes,
		sandbox.KitRoute{Pattern: "/capture", Op: "capture {method}", Handle: e.hosted},
		sandbox.KitRoute{Pattern: "/mobile", Op: "mobile {method}", Handle: e.hosted})
	api(post, "/api/device/ephemeral", "api/device/ephemeral", e.APIKeyScheme, e.ephemeral)
	api(post, "/api/sessions", "api/sessions", e.APIKeyScheme, e.createSession)
	api(post, "/api/v1/deeplink", "api/v1/deeplink", "ApiKey", e.deeplink)
	api(get, "/api/sessions/{id}", "api/sessions/{id}", e.resultsScheme, e.getSession)
	api(get, "/api/sessions/", "api/sessions/{id}", e.resultsScheme, e.getSession) // no id: 404
	api(nil, "/api/*", "api/*", e.APIKeyScheme, e.echo)
	e.kit = &sandbox.Kit{Provider: Name, Host: e.host, Shape: ErrorBody, RecordRefused: true, MethodMessage: "method not allowed",
		Routes: routes, Caller: func(r *http.Request, rt *sandbox.KitRoute) sandbox.Caller {
			var c creds
			if scheme, ok := e.schemes[rt.Op]; ok {
				c = e.creds(r, scheme)
			} else { // a hosted page
				authz, _, _, _ := e.pageArgs(r)
				c = e.tokenCreds(authz)
			}
			return sandbox.Caller{Cred: c.kind, APIKey: e.keyLeaked(r)}
		}}
}

// ServeSandbox implements sandbox.Emulator.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	return e.kit.Serve(w, r)
}

// readJSON decodes an optional JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(bytes.TrimSpace(b)) == 0 {
		return true
	}
	if err != nil || json.Unmarshal(b, v) != nil {
		apiErr(w, r, http.StatusBadRequest, "malformed JSON body")
		return false
	}
	return true
}

// ephemeral mints an ephemeral token for a new device. Only the API key may.
func (e *Emulator) ephemeral(w http.ResponseWriter, r *http.Request, c creds) {
	if !e.apiKey(w, r, c, PermEphemeral) {
		return
	}
	var in struct {
		TTL json.Number `json:"ttl"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	ttl, err := in.TTL.Int64()
	if err != nil || ttl <= 0 {
		apiErr(w, r, http.StatusBadRequest, "ttl must be a positive number of seconds")
		return
	}
	if max := int64(time.Duration(e.MaxTTL) / time.Second); ttl > max {
		apiErr(w, r, http.StatusBadRequest, "ttl is above the maximum of "+strconv.FormatInt(max, 10)+" seconds")
		return
	}
	dev := sandbox.RandomHex(8)
	tok := e.host.Signer.Mint(jwt.MapClaims{"typ": "ephemeral", "sub": dev, "jti": sandbox.RandomHex(8)}, time.Duration(ttl)*time.Second)
	sandbox.WriteJSON(w, http.StatusOK, map[string]string{"authorization": "Token " + tok})
}

// requireToken answers 401 unless c is a live ephemeral token.
func requireToken(w http.ResponseWriter, r *http.Request, c creds) bool {
	switch c.kind {
	case credEphemeral:
		return true
	case credExpired:
		apiErr(w, r, http.StatusUnauthorized, "the ephemeral token has expired")
	default:
		apiErr(w, r, http.StatusUnauthorized, "missing or invalid ephemeral token")
	}
	return false
}

// createSession starts a workflow session bound to the token's device. The
// emulated API key has only the permissions Regula's token-URL flow asks
// for, so it may not start sessions itself.
func (e *Emulator) createSession(w http.ResponseWriter, r *http.Request, c creds) {
	if c.kind == sandbox.CredAPIKey {
		apiErr(w, r, http.StatusForbidden, "the API key may not start sessions: use an ephemeral token")
		return
	}
	if !requireToken(w, r, c) {
		return
	}
	wf := r.URL.Query().Get("workflowId")
	if wf == "" {
		apiErr(w, r, http.StatusBadRequest, "workflowId is required")
		return
	}
	if wf != e.WorkflowID {
		apiErr(w, r, http.StatusBadRequest, "unknown workflowId")
		return
	}
	var in struct {
		Metadata map[string]any `json:"metadata"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if in.Metadata == nil {
		in.Metadata = map[string]any{}
	}
	s := e.newSession(wf, c.device, in.Metadata)
	e.st.mu.Lock()
	view := s.view()
	e.st.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, view)
}

// newSession stores a new session of a device.
func (e *Emulator) newSession(wf, device string, meta map[string]any) *emuSession {
	s := &emuSession{ID: sandbox.RandomHex(12), WorkflowID: wf, Device: device, Metadata: meta, CreatedAt: time.Now().UTC()}
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	e.st.sessions[s.ID] = s
	e.st.byDevice[s.Device] = append(e.st.byDevice[s.Device], s.ID)
	return s
}

// deeplink is the one-call flow of Regula's current Token URL page: the API
// key (as "ApiKey <key>", with deeplink:write) creates an ephemeral device
// and a session for the workflow, and gets the /mobile link carrying both.
// Every body field is optional: metadata (an object, default {}), locale (a
// string or null), ttl (seconds, default 3600). workflowId may be repeated
// or comma-separated; every id must be known.
func (e *Emulator) deeplink(w http.ResponseWriter, r *http.Request, c creds) {
	if c.kind == credEphemeral {
		apiErr(w, r, http.StatusForbidden, "an ephemeral token may not create deep links")
		return
	}
	if !e.apiKey(w, r, c, PermDeeplink) {
		return
	}
	var wfs []string
	for _, v := range r.URL.Query()["workflowId"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				wfs = append(wfs, id)
			}
		}
	}
	if len(wfs) == 0 {
		apiErr(w, r, http.StatusBadRequest, "workflowId is required")
		return
	}
	for _, wf := range wfs {
		if wf != e.WorkflowID {
			apiErr(w, r, http.StatusBadRequest, "unknown workflowId")
			return
		}
	}
	var in struct {
		Metadata map[string]any `json:"metadata"`
		Locale   *string        `json:"locale"`
		TTL      *json.Number   `json:"ttl"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	ttl := int64(3600)
	if in.TTL != nil {
		n, err := in.TTL.Int64()
		if err != nil || n <= 0 {
			apiErr(w, r, http.StatusBadRequest, "ttl must be a positive number of seconds")
			return
		}
		ttl = n
	}
	if max := int64(time.Duration(e.MaxTTL) / time.Second); ttl > max {
		apiErr(w, r, http.StatusBadRequest, "ttl is above the maximum of "+strconv.FormatInt(max, 10)+" seconds")
		return
	}
	if in.Metadata == nil {
		in.Metadata = map[string]any{}
	}
	dev := sandbox.RandomHex(8)
	life := time.Duration(ttl) * time.Second
	tok := e.host.Signer.Mint(jwt.MapClaims{"typ": "ephemeral", "sub": dev, "jti": sandbox.RandomHex(8)}, life)
	s := e.newSession(wfs[0], dev, in.Metadata)
	now := time.Now().UTC()
	link := e.publicURL(r) + "/mobile?authorization=" + queryEscape("Token "+tok) + "&sessionId=" + s.ID
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"url": link,
		"createdAt": now.Format("2006-01-02T15:04:05.000Z07:00"), "expiresAt": now.Add(life).Format("2006-01-02T15:04:05.000Z07:00"),
		"workflowIds": wfs})
}

// view is the session as the API shows it; call with the lock held.
func (s *emuSession) view() map[string]any {
	props := map[string]any{}
	for k, v := range s.Metadata {
		props[k] = v
	}
	v := map[string]any{"id": s.ID, "status": s.Status, "workflowId": s.WorkflowID, "metadata": s.Metadata,
		"properties": props, "files": []any{}, "createdAt": s.CreatedAt.Format(time.RFC3339)}
	if !s.CompletedAt.IsZero() {
		v["completedAt"] = s.CompletedAt.Format(time.RFC3339)
	}
	return v
}

// getSession is the results API: the API key reads any session, an
// ephemeral token only its own device's.
func (e *Emulator) getSession(w http.ResponseWriter, r *http.Request, c creds) {
	if (c.kind == sandbox.CredAPIKey || c.wrongScheme) && !e.apiKey(w, r, c, PermResults) {
		return
	}
	if c.kind != sandbox.CredAPIKey && !requireToken(w, r, c) {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/api/sessions/")
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	s := e.st.sessions[id]
	switch {
	case s == nil:
		apiErr(w, r, http.StatusNotFound, "session not found")
	case c.kind == credEphemeral && s.Device != c.device:
		apiErr(w, r, http.StatusForbidden, "the ephemeral token may not read this session")
	default:
		sandbox.WriteJSON(w, http.StatusOK, s.view())
	}
}

// echo answers any other /api/ call made with an ephemeral token: it reads
// the whole body and reports its size and digest, and the session of the
// token, so tests can check whose token a passthrough carried and that
// bodies stream through intact.
func (e *Emulator) echo(w http.ResponseWriter, r *http.Request, c creds) {
	if !requireToken(w, r, c) {
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		apiErr(w, r, http.StatusBadRequest, "could not read the body")
		return
	}
	e.st.mu.Lock()
	ids := e.st.byDevice[c.device]
	sid := ""
	if len(ids) > 0 {
		sid = ids[len(ids)-1]
	}
	e.st.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"path": r.URL.EscapedPath(), "query": r.URL.RawQuery,
		"method": r.Method, "bytes": n, "sha256": hex.EncodeToString(h.Sum(nil)), "sessionId": sid, "deviceId": c.device})
}

func (e *Emulator) publicURL(r *http.Request) string { return sandbox.PublicURL(e.PublicURL, r) }

var flowPage = sandbox.NewPage(`{{with .Data}}<p>This page stands in for Regula's hosted capture. Session <code>{{.ID}}</code>.</p>
{{if .Mobile}}<p>To continue on a phone, open <a id="mobile-link" href="{{.Mobile}}">the mobile link</a> there.</p>{{end}}
{{if .Done}}<p id="done" class="notice">This session is already completed (status {{.Status}}).</p>{{else}}
<form method="post">
<fieldset><legend>Outcome of this verification</legend>
<label><input type="radio" name="outcome" value="pass" id="outcome-pass" checked> Verified (status 2)</label>
<label><input type="radio" name="outcome" value="fail" id="outcome-fail"> Not verified (status 1)</label>
</fieldset>
{{with .Return}}<input type="hidden" name="return" value="{{.}}">{{end}}
<button type="submit" id="submit">Finish verification</button>
</form>{{end}}{{end}}`)

func page(w http.ResponseWriter, status int, msg string) {
	sandbox.WriteNotice(w, status, sandbox.Notice{Provider: "Regula", ID: "error", Error: true, Message: msg})
}

// returnTo is where the done page leads back: ?redirect= when set, else the
// page the person came from, as the browser named it (Referer, usually the
// site's origin) when the form was shown.
func returnTo(r *http.Request, publicURL string) string {
	for _, v := range []string{r.URL.Query().Get("redirect"), r.PostFormValue("return"), r.Header.Get("Referer")} {
		if u := sandbox.ReturnURL(v); u != nil && !strings.HasPrefix(u.String(), publicURL+"/") {
			return u.String()
		}
	}
	return ""
}

// hosted serves the stand-ins for Regula's hosted pages: /capture?url=<the
// mobile link> (the link must point at this platform) and
// /mobile?authorization=<token>&sessionId=<id>. GET shows a form; POST
// completes the session with the chosen status, sends the webhook and shows
// a done page, or redirects to ?redirect= when it is an http(s) URL.
func (e *Emulator) hosted(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	authz, sid, mobile, bad := e.pageArgs(r)
	c := e.tokenCreds(authz)
	if bad != "" {
		page(w, http.StatusBadRequest, bad)
		return
	}
	switch c.kind {
	case credEphemeral:
	case credExpired:
		page(w, http.StatusUnauthorized, "This link has expired.")
		return
	default:
		page(w, http.StatusUnauthorized, "This link is not valid.")
		return
	}
	e.st.mu.Lock()
	s := e.st.sessions[sid]
	var done bool
	var status int
	if s != nil {
		done, status = s.Status != StatusNotCompleted, s.Status
	}
	e.st.mu.Unlock()
	switch {
	case s == nil:
		page(w, http.StatusNotFound, "Unknown session.")
		return
	case s.Device != c.device:
		page(w, http.StatusForbidden, "This link's token does not belong to this session.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		sandbox.RenderPage(w, http.StatusOK, flowPage, sandbox.PageData{Provider: "Regula", Title: "verification",
			Data: map[string]any{"ID": s.ID, "Mobile": mobile, "Done": done, "Status": StatusName(status), "Return": returnTo(r, e.publicURL(r))}})
	case http.MethodPost:
		outcomes := map[string]int{"pass": StatusVerified, "fail": StatusNotVerified}
		st, ok := outcomes[r.PostFormValue("outcome")]
		if !ok {
			page(w, http.StatusBadRequest, "outcome must be pass or fail")
			return
		}
		e.complete(s, st)
		if u, err := url.Parse(r.URL.Query().Get("redirect")); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			http.Redirect(w, r, u.String(), http.StatusSeeOther)
			return
		}
		sandbox.WriteNotice(w, http.StatusOK, sandbox.Notice{Provider: "Regula", ID: "done", Message: "Verification finished.", Return: returnTo(r, e.publicURL(r))})
	default:
		w.Header().Set("Allow", "GET, POST")
		page(w, http.StatusMethodNotAllowed, "GET or POST")
	}
}

// pageArgs reads a hosted page's query: /capture?url=<the mobile link> (it
// must point at this platform) or /mobile?authorization=&sessionId=; bad
// says what is wrong with it.
func (e *Emulator) pageArgs(r *http.Request) (authz, sid, mobile, bad string) {
	q := r.URL.Query()
	if r.URL.Path != "/capture" {
		return q.Get("authorization"), q.Get("sessionId"), "", ""
	}
	inner, err := url.Parse(q.Get("url"))
	switch {
	case q.Get("url") == "" || err != nil:
		return "", "", "", "url is required: the mobile link"
	case inner.Scheme+"://"+inner.Host != e.publicURL(r) || inner.Path != "/mobile":
		return "", "", "", "url must be this platform's /mobile link"
	}
	iq := inner.Query()
	return iq.Get("authorization"), iq.Get("sessionId"), inner.String(), ""
}

// complete sets a session's final status once and sends the webhook.
func (e *Emulator) complete(s *emuSession, status int) {
	e.st.mu.Lock()
	first := s.Status == StatusNotCompleted || s.Status == StatusPending
	if first {
		s.Status, s.CompletedAt = status, time.Now().UTC()
	}
	e.st.mu.Unlock()
	if first {
		e.Webhooks.Send(e.host.Logger, Notification{SessionID: s.ID, Status: &status}, nil)
	}
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
