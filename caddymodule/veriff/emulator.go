package veriff

import (
	"crypto/hmac"
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
	"github.com/google/uuid"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// Emulator emulates Veriff's session API (module ID idv.sandbox.veriff):
// POST /v1/sessions (X-AUTH-CLIENT), GET /v1/sessions/{id}/decision
// (X-AUTH-CLIENT and the HMAC of the id), the hosted flow at /v/{token}
// (a pass / fail / review page), and signed decision and event webhooks
// retried until a 200. Errors are Veriff's {"status":"fail","code","message"}
// with its troubleshooting codes.
type Emulator struct {
	// APIKey and SharedSecret are the emulated integration's credentials.
	APIKey       string `json:"api_key,omitempty"`
	SharedSecret string `json:"shared_secret,omitempty"`
	// Webhooks: webhook_url (decisions and events) and webhook_retry.
	// Veriff retries about once an hour for up to 7 days
	// (webhook_retry 1h 1 168); the sandbox default is 200ms 2.5 5.
	Webhooks sandbox.Webhooks `json:"webhooks,omitempty"`

	kit   *sandbox.Kit
	host  *sandbox.Host
	state *emuState
}

// emuSession is one emulated Veriff session.
type emuSession struct {
	ID, AttemptID, Token, VendorData, Callback string
	FirstName, LastName                        string
	Status                                     string // created, submitted, or a decision status
	Decision                                   map[string]any
	CreatedAt                                  time.Time
}

type emuState struct {
	mu      sync.Mutex
	byID    map[string]*emuSession
	byToken map[string]*emuSession
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.veriff", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the emulator's block:
//
//	veriff {
//		api_key       <key>
//		shared_secret <secret>
//		webhook_url   <url>                       # the idv handler's /webhook
//		webhook_retry <first> <factor> <attempts>
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return sandbox.ParseBlock(d, Name, e.Webhooks.Options(map[string]provider.Option{
		"api_key": provider.String(&e.APIKey), "shared_secret": provider.String(&e.SharedSecret),
		"webhook_auth": sandbox.SignedWebhooks("Veriff"),
	}, "webhook_url", "webhook_retry"))
}

// Outcomes of the hosted page.
var outcomes = []sandbox.Outcome{
	{Value: "approved", Label: "Pass (approved)"},
	{Value: "declined", Label: "Fail (declined)"},
	{Value: "review", Label: "Review"},
	{Value: "resubmission_requested", Label: "Ask to resubmit"},
	{Value: "abandoned", Label: "Abandon"},
}

// codes are the decision codes of the status-code table.
var codes = map[string]int{"approved": 9001, "declined": 9102, "resubmission_requested": 9103,
	"expired": 9104, "abandoned": 9104, "review": 9121}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(_ caddy.Context, h *sandbox.Host) error {
	if e.APIKey == "" || e.SharedSecret == "" {
		return errors.New("veriff: api_key and shared_secret are required")
	}
	e.host = h
	e.state = h.Shared("veriff:"+e.APIKey, func() any {
		return &emuState{byID: map[string]*emuSession{}, byToken: map[string]*emuSession{}}
	}).(*emuState)
	e.kit = &sandbox.Kit{Provider: Name, Host: h, Error: writeFail, Credential: e.credential,
		Routes: []sandbox.KitRoute{
			{Methods: []string{http.MethodPost}, Pattern: "/v1/sessions", Op: "v1/sessions", Handle: e.createSession},
			{Methods: []string{http.MethodGet}, Pattern: "/v1/sessions/{id}/decision", Op: "v1/sessions/{id}/decision", Handle: e.decision},
			{Methods: []string{http.MethodGet, http.MethodPost}, Pattern: "/v/{token}", Op: "v/{token}", Handle: e.flow},
		}}
	return nil
}

// ServeSandbox implements sandbox.Emulator.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	return e.kit.Serve(w, r)
}

// writeFail writes Veriff's error body.
func writeFail(w http.ResponseWriter, status int, msg string) {
	failCode(w, status, "", msg)
}

func failCode(w http.ResponseWriter, status int, code, msg string) {
	body := map[string]any{"status": "fail", "message": msg}
	if code != "" {
		body["code"] = code
	}
	sandbox.WriteJSON(w, status, body)
}

func (e *Emulator) credential(r *http.Request) string {
	return sandbox.Credential(r.Header.Get("X-Auth-Client"), e.APIKey)
}

// auth checks X-AUTH-CLIENT, and the HMAC of msg when signed or required.
func (e *Emulator) auth(w http.ResponseWriter, r *http.Request, msg []byte, required bool, mismatch string) bool {
	switch e.credential(r) {
	case sandbox.CredNone:
		failCode(w, http.StatusUnauthorized, "1801", "Mandatory X-AUTH-CLIENT header containing the API key is missing from the request.")
		return false
	case sandbox.CredInvalid:
		failCode(w, http.StatusUnauthorized, "1803", "Integration with the API key was not found.")
		return false
	}
	sig := r.Header.Get("X-Hmac-Signature")
	if sig == "" && !required {
		return true
	}
	got, err := hex.DecodeString(strings.ToLower(sig))
	if err != nil || len(got) != 32 {
		failCode(w, http.StatusUnauthorized, "1812", "Signature is not a valid SHA256 hash.")
		return false
	}
	if !hmac.Equal(got, mustHex(sign([]byte(e.SharedSecret), msg))) {
		failCode(w, http.StatusUnauthorized, mismatch, "Signature does not match the HMAC-SHA256 of the "+map[string]string{"1818": "query ID", "1819": "request body"}[mismatch]+" and integration API secret.")
		return false
	}
	return true
}

func mustHex(s string) []byte { b, _ := hex.DecodeString(s); return b }

// createSession is POST /v1/sessions.
func (e *Emulator) createSession(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		failCode(w, http.StatusBadRequest, "1102", "Mandatory parameters are missing from the request.")
		return
	}
	if !e.auth(w, r, body, false, "1819") {
		return
	}
	var in struct {
		Verification *struct {
			Callback   string `json:"callback"`
			VendorData string `json:"vendorData"`
			Person     struct {
				FirstName string `json:"firstName"`
				LastName  string `json:"lastName"`
			} `json:"person"`
		} `json:"verification"`
	}
	if json.Unmarshal(body, &in) != nil || in.Verification == nil {
		failCode(w, http.StatusBadRequest, "1102", "Mandatory parameters are missing from the request.")
		return
	}
	v := in.Verification
	if v.Callback != "" {
		if u, err := url.Parse(v.Callback); err != nil || u.Scheme != "https" {
			failCode(w, http.StatusBadRequest, "1302", "Only HTTPS return URLs are allowed.")
			return
		}
	}
	if len(v.VendorData) > 1000 {
		failCode(w, http.StatusBadRequest, "1501", "Vendor data must be a string shorter than 1000 characters.")
		return
	}
	s := &emuSession{ID: uuid.NewString(), AttemptID: uuid.NewString(), Token: sandbox.RandomHex(24), VendorData: v.VendorData,
		Callback: v.Callback, FirstName: v.Person.FirstName, LastName: v.Person.LastName, Status: "created", CreatedAt: time.Now().UTC()}
	e.state.mu.Lock()
	e.state.byID[s.ID] = s
	e.state.byToken[s.Token] = s
	e.state.mu.Unlock()
	host := sandbox.Origin(r)
	sandbox.WriteJSON(w, http.StatusCreated, map[string]any{"status": "success", "verification": map[string]any{
		"id": s.ID, "url": host + "/v/" + s.Token, "vendorData": nullable(s.VendorData), "host": host,
		"status": "created", "sessionToken": e.host.Signer.Mint(map[string]any{"session_id": s.ID}, 7*24*time.Hour),
	}})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// decision is GET /v1/sessions/{id}/decision.
func (e *Emulator) decision(w http.ResponseWriter, r *http.Request, p map[string]string) {
	if !e.auth(w, r, []byte(p["id"]), true, "1818") {
		return
	}
	e.state.mu.Lock()
	s := e.state.byID[p["id"]]
	var d map[string]any
	if s != nil {
		d = s.Decision
	}
	e.state.mu.Unlock()
	if s == nil {
		failCode(w, http.StatusNotFound, "", "Session not found.")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"status": "success", "verification": d,
		"technicalData": map[string]any{"ip": nil}})
}

// flow is the hosted flow: GET shows the outcome page, POST decides.
func (e *Emulator) flow(w http.ResponseWriter, r *http.Request, p map[string]string) {
	e.state.mu.Lock()
	s := e.state.byToken[p["token"]]
	e.state.mu.Unlock()
	if s == nil {
		http.Error(w, "This verification link is not valid.", http.StatusNotFound)
		return
	}
	// The form posts to this very URL, so a ?redirect= (below) is kept.
	outcome := sandbox.OutcomeForm(w, r, "Veriff sandbox verification", r.URL.RequestURI(), outcomes)
	if outcome == "" {
		return
	}
	now := time.Now().UTC()
	e.state.mu.Lock()
	if s.Decision != nil && s.Status != "resubmission_requested" {
		e.state.mu.Unlock()
		http.Error(w, "This verification is already decided.", http.StatusConflict)
		return
	}
	if s.Status == "resubmission_requested" {
		s.AttemptID = uuid.NewString() // a resubmission is a new attempt
	}
	s.Status = outcome
	s.Decision = map[string]any{
		"id": s.ID, "attemptId": s.AttemptID, "vendorData": nullable(s.VendorData), "endUserId": nil,
		"status": outcome, "code": codes[outcome], "reason": nil, "reasonCode": nil,
		"decisionTime": now.Format("2006-01-02T15:04:05.000Z"), "acceptanceTime": s.CreatedAt.Format("2006-01-02T15:04:05.000Z"),
		"person":   map[string]any{"firstName": nullable(strings.ToUpper(s.FirstName)), "lastName": nullable(strings.ToUpper(s.LastName))},
		"document": map[string]any{"type": "PASSPORT", "country": "EE"},
	}
	if outcome == "declined" || outcome == "resubmission_requested" {
		s.Decision["reason"], s.Decision["reasonCode"] = "Sandbox decision", 102
	}
	event, _ := json.Marshal(map[string]any{"id": s.ID, "attemptId": s.AttemptID, "feature": "selfid", "code": 7002,
		"action": "submitted", "vendorData": nullable(s.VendorData), "endUserId": nil})
	decision, _ := json.Marshal(map[string]any{"status": "success", "verification": s.Decision,
		"technicalData": map[string]any{"ip": nil}})
	callback := s.Callback
	e.state.mu.Unlock()
	// The event first, then the decision, one after the other, as Veriff
	// orders them (progress precedes the decision).
	sandbox.InOrder([][]byte{event, decision}, e.send)
	if callback != "" {
		http.Redirect(w, r, callback, http.StatusSeeOther)
		return
	}
	// Sandbox only: Veriff takes no http callback (error 1302), so a site on
	// http://localhost names its return with ?redirect= on the flow's URL,
	// as with Regula's stand-in.
	if u := sandbox.ReturnURL(r.URL.Query().Get("redirect")); u != nil {
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	sandbox.WriteNotice(w, http.StatusOK, sandbox.Notice{Provider: "Veriff", ID: "done",
		Message: "Thank you. Your verification was submitted (" + outcome + ")."})
}

// send delivers a webhook signed as Veriff signs: the hex HMAC-SHA256 of
// the body, and the integration's API key. Only a 200 counts as delivered.
func (e *Emulator) send(body []byte, done chan<- error) {
	e.Webhooks.SendSigned(e.host.Logger, body, func(b []byte) http.Header {
		return http.Header{"X-Hmac-Signature": {sign([]byte(e.SharedSecret), b)}, "X-Auth-Client": {e.APIKey}}
	}, func(status int) bool { return status == http.StatusOK }, done)
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
