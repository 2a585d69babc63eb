package sumsub

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/google/uuid"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// Emulator emulates Sumsub's API (module ID idv.sandbox.sumsub): POST
// /resources/accessTokens/sdk and the older POST /resources/accessTokens?...,
// GET /resources/applicants/{id}/one (also -;externalUserId={id}), each
// checking the request signature and its one-minute clock window; a hosted
// page at /websdk/{token} standing in for the WebSDK (pass / fail / retry);
// and applicant webhooks signed with X-Payload-Digest, retried until
// delivered. Errors are Sumsub's {"description","code","correlationId",
// "errorCode","errorName"}.
type Emulator struct {
	// AppToken and SecretKey are the emulated app token's credentials.
	AppToken  string `json:"app_token,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	// Levels are the levels that exist (level_name, repeatable). Default:
	// basic-kyc-level.
	Levels []string `json:"levels,omitempty"`
	// WebhookSecret signs the webhooks in WebhookAlg (default
	// HMAC_SHA256_HEX, as the Dashboard).
	WebhookSecret string `json:"webhook_secret,omitempty"`
	WebhookAlg    string `json:"webhook_alg,omitempty"`
	// Webhooks: webhook_url and webhook_retry. Sumsub resends a failed
	// webhook 4 times (5 min, 1 h, 5 h, 18 h); the sandbox default is
	// 200ms 2.5 5.
	Webhooks sandbox.Webhooks `json:"webhooks,omitempty"`

	kit   *sandbox.Kit
	host  *sandbox.Host
	state *emuState
}

// Window is how far X-App-Access-Ts may be from the emulator's clock.
const Window = time.Minute

type emuApplicant struct {
	ID, InspectionID, ExternalUserID, Level string
	CreatedAt                               time.Time
	ReviewStatus                            string // init, pending, completed
	AttemptCnt                              int
	AttemptID                               string
	Result                                  *ReviewResult
	ReviewDate                              time.Time
}

type emuToken struct {
	UserID  string
	Expires time.Time
}

type emuState struct {
	mu     sync.Mutex
	byUser map[string]*emuApplicant
	tokens map[string]emuToken
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.sumsub", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the emulator's block:
//
//	sumsub {
//		app_token      <token>
//		secret_key     <secret>
//		level_name     <level>        # repeatable; default basic-kyc-level
//		webhook_secret <secret>
//		webhook_alg    HMAC_SHA1_HEX | HMAC_SHA256_HEX | HMAC_SHA512_HEX
//		webhook_url    <url>          # the idv handler's /webhook
//		webhook_retry  <first> <factor> <attempts>
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, Name, e.Webhooks.Options(map[string]provider.Option{
		"app_token":      provider.String(&e.AppToken),
		"secret_key":     provider.String(&e.SecretKey),
		"level_name":     provider.Strings(&e.Levels),
		"webhook_secret": provider.String(&e.WebhookSecret),
		"webhook_alg": {Set: func(a []string) error {
			if _, ok := algs[a[0]]; !ok {
				return errors.New("HMAC_SHA1_HEX, HMAC_SHA256_HEX or HMAC_SHA512_HEX")
			}
			e.WebhookAlg = a[0]
			return nil
		}},
	}, "webhook_url", "webhook_retry"))
}

// Outcomes of the hosted page.
var outcomes = []sandbox.Outcome{
	{Value: "GREEN", Label: "Pass (GREEN)"},
	{Value: "RED", Label: "Fail (RED, FINAL)"},
	{Value: "RETRY", Label: "Ask to resubmit (RED, RETRY)"},
}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(_ caddy.Context, h *sandbox.Host) error {
	if e.AppToken == "" || e.SecretKey == "" {
		return errors.New("sumsub: app_token and secret_key are required")
	}
	if e.WebhookURLSet() && e.WebhookSecret == "" {
		return errors.New("sumsub: webhook_url needs webhook_secret (Sumsub signs every webhook)")
	}
	if len(e.Levels) == 0 {
		e.Levels = []string{"basic-kyc-level"}
	}
	if e.WebhookAlg == "" {
		e.WebhookAlg = DefaultDigestAlg
	}
	e.host = h
	e.state = h.Shared("sumsub:"+e.AppToken, func() any {
		return &emuState{byUser: map[string]*emuApplicant{}, tokens: map[string]emuToken{}}
	}).(*emuState)
	e.kit = &sandbox.Kit{Provider: Name, Host: h, Error: writeError, Credential: e.credential,
		Routes: []sandbox.KitRoute{
			{Methods: []string{http.MethodPost}, Pattern: "/resources/accessTokens/sdk", Op: "resources/accessTokens/sdk", Handle: e.tokenSDK},
			{Methods: []string{http.MethodPost}, Pattern: "/resources/accessTokens", Op: "resources/accessTokens", Handle: e.tokenQuery},
			{Methods: []string{http.MethodGet}, Pattern: "/resources/applicants/{id}/one", Op: "resources/applicants/{id}/one", Handle: e.applicantOne},
			{Methods: []string{http.MethodGet, http.MethodPost}, Pattern: "/websdk/{token}", Op: "websdk/{token}", Handle: e.flow},
		}}
	return nil
}

// WebhookURLSet reports whether webhooks are sent.
func (e *Emulator) WebhookURLSet() bool { return e.Webhooks.URL != "" }

// ServeSandbox implements sandbox.Emulator.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	return e.kit.Serve(w, r)
}

func correlationID() string { return "req-" + uuid.NewString() }

// writeError writes Sumsub's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeCode(w, status, 0, "", msg)
}

func writeCode(w http.ResponseWriter, status, errorCode int, errorName, msg string) {
	body := map[string]any{"description": msg, "code": status, "correlationId": correlationID()}
	if errorCode != 0 {
		body["errorCode"], body["errorName"] = errorCode, errorName
	}
	sandbox.WriteJSON(w, status, body)
}

func (e *Emulator) credential(r *http.Request) string {
	return sandbox.Credential(r.Header.Get("X-App-Token"), e.AppToken)
}

// auth reads the body and checks the app token, the timestamp's window and
// the signature over ts + METHOD + path?query (as sent) + body.
func (e *Emulator) auth(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Request body is too large")
		return nil, false
	}
	switch e.credential(r) {
	case sandbox.CredNone:
		writeCode(w, http.StatusUnauthorized, 4000, "app-token-missing", "App token is missing")
		return nil, false
	case sandbox.CredInvalid:
		writeCode(w, http.StatusUnauthorized, 4001, "app-token-invalid", "App token is invalid")
		return nil, false
	}
	ts := r.Header.Get("X-App-Access-Ts")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		writeCode(w, http.StatusUnauthorized, 4002, "app-token-ts-invalid", "X-App-Access-Ts must be a Unix time in seconds")
		return nil, false
	}
	if d := time.Since(time.Unix(sec, 0)); d > Window || d < -Window {
		writeCode(w, http.StatusUnauthorized, 4002, "app-token-ts-invalid", "Request timestamp is more than 1 minute away from the server time")
		return nil, false
	}
	uri := r.RequestURI
	if uri == "" || !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI()
	}
	want := Sign([]byte(e.SecretKey), ts, r.Method, uri, body)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(r.Header.Get("X-App-Access-Sig"))), []byte(want)) != 1 {
		writeCode(w, http.StatusUnauthorized, 4003, "app-token-signature mismatch", "Request signature mismatch")
		return nil, false
	}
	return body, true
}

// tokenSDK is POST /resources/accessTokens/sdk {userId, levelName, ttlInSecs}.
func (e *Emulator) tokenSDK(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	body, ok := e.auth(w, r)
	if !ok {
		return
	}
	var in struct {
		UserID    string `json:"userId"`
		LevelName string `json:"levelName"`
		TTLInSecs *int64 `json:"ttlInSecs"`
	}
	if json.Unmarshal(body, &in) != nil {
		writeError(w, http.StatusBadRequest, "Malformed JSON body")
		return
	}
	e.mint(w, r, in.UserID, in.LevelName, in.TTLInSecs)
}

// tokenQuery is the older POST /resources/accessTokens?userId=&levelName=&ttlInSecs=.
func (e *Emulator) tokenQuery(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if _, ok := e.auth(w, r); !ok {
		return
	}
	q := r.URL.Query()
	var ttl *int64
	if v := q.Get("ttlInSecs"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "ttlInSecs must be a number")
			return
		}
		ttl = &n
	}
	e.mint(w, r, q.Get("userId"), q.Get("levelName"), ttl)
}

// mint answers {token, userId}; the first token of a userId creates its
// applicant (applicantCreated).
func (e *Emulator) mint(w http.ResponseWriter, _ *http.Request, userID, level string, ttl *int64) {
	switch {
	case userID == "":
		writeError(w, http.StatusBadRequest, "userId is required")
		return
	case level == "":
		writeError(w, http.StatusBadRequest, "levelName is required")
		return
	case !containsString(e.Levels, level): // case-sensitive, as Sumsub's
		writeError(w, http.StatusNotFound, "Level '"+level+"' not found")
		return
	}
	secs := int64(600)
	if ttl != nil {
		if *ttl <= 0 {
			writeError(w, http.StatusBadRequest, "ttlInSecs must be positive")
			return
		}
		secs = *ttl
	}
	tok := "_act-sbx-" + uuid.NewString()
	now := time.Now().UTC()
	e.state.mu.Lock()
	a := e.state.byUser[userID]
	created := a == nil
	if created {
		a = &emuApplicant{ID: sandbox.RandomHex(12), InspectionID: sandbox.RandomHex(12), ExternalUserID: userID, Level: level,
			CreatedAt: now, ReviewStatus: "init"}
		e.state.byUser[userID] = a
	}
	e.state.tokens[tok] = emuToken{UserID: userID, Expires: now.Add(time.Duration(secs) * time.Second)}
	var hook []byte
	if created {
		hook = e.webhookBody(a, "applicantCreated", now)
	}
	e.state.mu.Unlock()
	if hook != nil {
		e.send([][]byte{hook})
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "userId": userID})
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// applicantOne is GET /resources/applicants/{applicantId}/one and
// /resources/applicants/-;externalUserId={userId}/one.
func (e *Emulator) applicantOne(w http.ResponseWriter, r *http.Request, p map[string]string) {
	if _, ok := e.auth(w, r); !ok {
		return
	}
	id := p["id"]
	e.state.mu.Lock()
	defer e.state.mu.Unlock()
	var a *emuApplicant
	if ext, ok := strings.CutPrefix(id, "-;externalUserId="); ok {
		a = e.state.byUser[ext]
	} else {
		for _, x := range e.state.byUser {
			if x.ID == id {
				a = x
			}
		}
	}
	if a == nil {
		writeError(w, http.StatusNotFound, "Applicant not found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, e.applicantJSON(a))
}

// applicantJSON is the applicant as GET .../one shows it (caller holds mu).
func (e *Emulator) applicantJSON(a *emuApplicant) map[string]any {
	review := map[string]any{"reviewId": "sbxR" + a.ID[:8], "attemptId": a.AttemptID, "attemptCnt": a.AttemptCnt,
		"levelName": a.Level, "createDate": a.CreatedAt.Format("2006-01-02 15:04:05-0700"), "reviewStatus": a.ReviewStatus,
		"priority": 0}
	if a.Result != nil {
		review["reviewResult"] = resultJSON(a.Result)
		review["reviewDate"] = a.ReviewDate.Format("2006-01-02 15:04:05.000-0700")
	}
	return map[string]any{"id": a.ID, "createdAt": a.CreatedAt.Format("2006-01-02 15:04:05"), "key": "SANDBOX",
		"clientId": "sandbox", "inspectionId": a.InspectionID, "externalUserId": a.ExternalUserID, "type": "individual",
		"review": review}
}

func resultJSON(r *ReviewResult) map[string]any {
	out := map[string]any{"reviewAnswer": r.ReviewAnswer}
	if r.ReviewAnswer == "RED" {
		out["reviewRejectType"] = r.ReviewRejectType
		out["rejectLabels"] = []string{"BAD_PHOTO"}
		out["moderationComment"] = "Sandbox decision"
		out["clientComment"] = "Sandbox decision"
	}
	return out
}

// webhookBody is an applicant webhook (caller holds mu).
func (e *Emulator) webhookBody(a *emuApplicant, typ string, at time.Time) []byte {
	body := map[string]any{"applicantId": a.ID, "inspectionId": a.InspectionID, "correlationId": correlationID(),
		"externalUserId": a.ExternalUserID, "levelName": a.Level, "type": typ, "sandboxMode": true,
		"reviewStatus": a.ReviewStatus, "createdAtMs": at.UTC().Format("2006-01-02 15:04:05.000"),
		"applicantType": "individual", "clientId": "sandbox"}
	if typ == "applicantReviewed" && a.Result != nil {
		body["reviewResult"] = resultJSON(a.Result)
	}
	b, _ := json.Marshal(body)
	return b
}

// flow is the stand-in for the WebSDK opened with an access token: GET
// shows the outcome page, POST submits and decides.
func (e *Emulator) flow(w http.ResponseWriter, r *http.Request, p map[string]string) {
	e.state.mu.Lock()
	t, ok := e.state.tokens[p["token"]]
	e.state.mu.Unlock()
	if !ok || time.Now().After(t.Expires) {
		http.Error(w, "This access token is not valid or has expired: ask the token server for a new one.", http.StatusUnauthorized)
		return
	}
	// The form posts to this very URL, so a ?redirect= (below) is kept.
	outcome := sandbox.OutcomeForm(w, r, "Sumsub sandbox verification (WebSDK stand-in)", r.URL.RequestURI(), outcomes)
	if outcome == "" {
		return
	}
	now := time.Now().UTC()
	e.state.mu.Lock()
	a := e.state.byUser[t.UserID]
	if a.ReviewStatus == "completed" && a.Result != nil && a.Result.ReviewRejectType != "RETRY" {
		e.state.mu.Unlock()
		http.Error(w, "This applicant is already reviewed.", http.StatusConflict)
		return
	}
	a.AttemptCnt++
	a.AttemptID = sandbox.RandomHex(4)
	a.ReviewStatus = "pending"
	pending := e.webhookBody(a, "applicantPending", now)
	a.ReviewStatus, a.ReviewDate = "completed", now.Add(time.Millisecond)
	switch outcome {
	case "GREEN":
		a.Result = &ReviewResult{ReviewAnswer: "GREEN"}
	case "RED":
		a.Result = &ReviewResult{ReviewAnswer: "RED", ReviewRejectType: "FINAL"}
	case "RETRY":
		a.Result = &ReviewResult{ReviewAnswer: "RED", ReviewRejectType: "RETRY"}
	}
	reviewed := e.webhookBody(a, "applicantReviewed", a.ReviewDate)
	e.state.mu.Unlock()
	e.send([][]byte{pending, reviewed})
	// Sandbox only: the WebSDK is embedded in the site's page, so there is
	// no return; the stand-in, opened as a page of its own, sends the person
	// back to ?redirect= when the site names one.
	if u := sandbox.ReturnURL(r.URL.Query().Get("redirect")); u != nil {
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	sandbox.WriteNotice(w, http.StatusOK, sandbox.Notice{Provider: "Sumsub", ID: "done",
		Message: "Thank you. Your documents were submitted (" + outcome + ")."})
}

// send delivers bodies one after the other, each signed as Sumsub signs:
// X-Payload-Digest, the hex HMAC of the body with the webhook secret, and
// X-Payload-Digest-Alg. Any 2xx counts as delivered (what Sumsub counts is
// not documented).
func (e *Emulator) send(bodies [][]byte) {
	if !e.WebhookURLSet() {
		return
	}
	sandbox.InOrder(bodies, func(b []byte, done chan<- error) {
		e.Webhooks.SendSigned(e.host.Logger, b, func(b []byte) http.Header {
			return http.Header{"X-Payload-Digest": {Digest(e.WebhookAlg, []byte(e.WebhookSecret), b)},
				"X-Payload-Digest-Alg": {e.WebhookAlg}}
		}, nil, done)
	})
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
