package onfido

import (
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

// Emulator emulates Onfido's Studio API (module ID idv.sandbox.onfido):
// POST /v3.6/applicants, POST /v3.6/workflow_runs, GET
// /v3.6/workflow_runs/{id} and POST /v3.6/sdk_token, each checking
// Authorization: Token token=<api_token>; a pass / fail / review page
// standing in for the SDK screen (GET /sdk?token=<sdk token>) and for the
// run's hosted link (link.url); and workflow_run.completed webhooks signed
// with X-SHA2-Signature, retried until a 2xx. Errors are Onfido's
// {"error":{"type","message","fields"}}.
type Emulator struct {
	// APIToken, WorkflowID and WebhookToken are the emulated account's.
	APIToken     string `json:"api_token,omitempty"`
	WorkflowID   string `json:"workflow_id,omitempty"`
	WebhookToken string `json:"webhook_token,omitempty"`
	// NoRunSDKToken makes workflow runs carry "sdk_token": null, so the
	// caller must mint one with POST /sdk_token (run_sdk_token off).
	NoRunSDKToken bool `json:"no_run_sdk_token,omitempty"`
	// Webhooks: webhook_url and webhook_retry. Onfido's schedule is
	// UNCONFIRMED; the sandbox default is 200ms 2.5 5.
	Webhooks sandbox.Webhooks `json:"webhooks,omitempty"`

	kit   *sandbox.Kit
	host  *sandbox.Host
	state *emuState
}

type emuApplicant struct {
	ID, FirstName, LastName string
	CreatedAt               time.Time
}

type emuRun struct {
	ID, ApplicantID, WorkflowID, Status, LinkToken, CustomerUserID, Redirect, SDKToken string
	CreatedAt, UpdatedAt                                                               time.Time
}

type emuState struct {
	mu         sync.Mutex
	applicants map[string]*emuApplicant
	runs       map[string]*emuRun
	byLink     map[string]*emuRun
	latest     map[string]*emuRun // the applicant's latest run
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.onfido", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the emulator's block:
//
//	onfido {
//		api_token     <token>
//		workflow_id   <uuid>
//		webhook_token <token>
//		run_sdk_token on|off                      # default on
//		webhook_url   <url>                       # the idv handler's /webhook
//		webhook_retry <first> <factor> <attempts>
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return sandbox.ParseBlock(d, Name, e.Webhooks.Options(map[string]provider.Option{
		"api_token": provider.String(&e.APIToken), "workflow_id": provider.String(&e.WorkflowID),
		"webhook_token": provider.String(&e.WebhookToken),
		"run_sdk_token": {Set: func(a []string) error {
			if a[0] != "on" && a[0] != "off" {
				return errors.New("on or off")
			}
			e.NoRunSDKToken = a[0] == "off"
			return nil
		}},
		"webhook_auth": sandbox.SignedWebhooks("Onfido"),
	}, "webhook_url", "webhook_retry"))
}

// Outcomes of the hosted page: the final statuses of a workflow run.
var outcomes = []sandbox.Outcome{
	{Value: "approved", Label: "Pass (approved)"},
	{Value: "declined", Label: "Fail (declined)"},
	{Value: "review", Label: "Review"},
	{Value: "abandoned", Label: "Abandon"},
	{Value: "error", Label: "Error"},
}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(_ caddy.Context, h *sandbox.Host) error {
	if e.APIToken == "" || e.WorkflowID == "" {
		return errors.New("onfido: api_token and workflow_id are required")
	}
	e.host = h
	e.state = h.Shared("onfido:"+e.APIToken, func() any {
		return &emuState{applicants: map[string]*emuApplicant{}, runs: map[string]*emuRun{},
			byLink: map[string]*emuRun{}, latest: map[string]*emuRun{}}
	}).(*emuState)
	e.kit = &sandbox.Kit{Provider: Name, Host: h, Error: writeError, Credential: e.credential,
		Routes: []sandbox.KitRoute{
			{Methods: []string{http.MethodPost}, Pattern: "/v3.6/applicants", Op: "v3.6/applicants", Handle: e.createApplicant},
			{Methods: []string{http.MethodPost}, Pattern: "/v3.6/workflow_runs", Op: "v3.6/workflow_runs", Handle: e.createRun},
			{Methods: []string{http.MethodGet}, Pattern: "/v3.6/workflow_runs/{id}", Op: "v3.6/workflow_runs/{id}", Handle: e.getRun},
			{Methods: []string{http.MethodPost}, Pattern: "/v3.6/sdk_token", Op: "v3.6/sdk_token", Handle: e.sdkToken},
			{Methods: []string{http.MethodGet, http.MethodPost}, Pattern: "/sdk", Op: "sdk", Handle: e.sdkScreen},
			{Methods: []string{http.MethodGet, http.MethodPost}, Pattern: "/wr/{link}", Op: "wr/{link}", Handle: e.hosted},
		}}
	return nil
}

// ServeSandbox implements sandbox.Emulator.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	return e.kit.Serve(w, r)
}

// errorTypes are the error.type strings by status (UNCONFIRMED beyond the
// shape, see the docs page).
var errorTypes = map[int]string{
	http.StatusBadRequest: "bad_request", http.StatusUnauthorized: "authorization_error",
	http.StatusForbidden: "forbidden", http.StatusNotFound: "resource_not_found",
	http.StatusMethodNotAllowed: "method_not_allowed", http.StatusUnprocessableEntity: "validation_error",
	http.StatusTooManyRequests: "rate_limit", http.StatusInternalServerError: "internal_server_error",
}

// writeError writes Onfido's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeErrorFields(w, status, msg, nil)
}

func writeErrorFields(w http.ResponseWriter, status int, msg string, fields map[string]any) {
	typ := errorTypes[status]
	if typ == "" {
		typ = "error"
	}
	if fields == nil {
		fields = map[string]any{}
	}
	sandbox.WriteJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "message": msg, "fields": fields}})
}

func invalid(w http.ResponseWriter, field, msg string) {
	writeErrorFields(w, http.StatusUnprocessableEntity, "There was a validation error on this request",
		map[string]any{field: []string{msg}})
}

func (e *Emulator) credential(r *http.Request) string {
	return sandbox.Credential(r.Header.Get("Authorization"), "Token token="+e.APIToken)
}

// auth checks the API token as Onfido does: 401 without or with a wrong one.
func (e *Emulator) auth(w http.ResponseWriter, r *http.Request) bool {
	switch e.credential(r) {
	case sandbox.CredNone:
		writeError(w, http.StatusUnauthorized, "Please provide an API token")
		return false
	case sandbox.CredInvalid:
		writeError(w, http.StatusUnauthorized, "Invalid authorization credentials")
		return false
	}
	return true
}

// readJSON reads a JSON object body into v, answering 400 / 422 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, v) != nil {
		writeError(w, http.StatusBadRequest, "The request body could not be parsed as JSON")
		return false
	}
	return true
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// createApplicant is POST /v3.6/applicants.
func (e *Emulator) createApplicant(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if !e.auth(w, r) {
		return
	}
	var in struct {
		FirstName *string `json:"first_name"`
		LastName  *string `json:"last_name"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"first_name", in.FirstName}, {"last_name", in.LastName}} {
		switch {
		case f.v == nil || *f.v == "":
			invalid(w, f.name, "can't be blank")
			return
		case strings.ContainsAny(*f.v, nameForbidden):
			invalid(w, f.name, "contains invalid characters")
			return
		}
	}
	a := &emuApplicant{ID: uuid.NewString(), FirstName: *in.FirstName, LastName: *in.LastName, CreatedAt: time.Now().UTC()}
	e.state.mu.Lock()
	e.state.applicants[a.ID] = a
	e.state.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusCreated, map[string]any{"id": a.ID, "created_at": stamp(a.CreatedAt),
		"href": "/v3.6/applicants/" + a.ID, "sandbox": true, "first_name": a.FirstName, "last_name": a.LastName,
		"email": nil, "dob": nil, "delete_at": nil, "id_numbers": []any{}, "phone_number": nil, "address": nil, "location": nil})
}

// mintSDKToken is an SDK token for applicant: a JWT with a real 90-minute
// expiry, naming the applicant and, for a run's own token, the run.
func (e *Emulator) mintSDKToken(applicant, run, referrer string) string {
	c := map[string]any{"applicant_id": applicant}
	if run != "" {
		c["workflow_run_id"] = run
	}
	if referrer != "" {
		c["referrer"] = referrer
	}
	return e.host.Signer.Mint(c, DefaultSDKTokenTTL)
}

// runJSON is Onfido's WorkflowRun object. The caller holds the lock.
func (e *Emulator) runJSON(r *http.Request, run *emuRun) map[string]any {
	var tok any
	if run.SDKToken != "" {
		tok = run.SDKToken
	}
	var redirect any
	if run.Redirect != "" {
		redirect = run.Redirect
	}
	var cuid any
	if run.CustomerUserID != "" {
		cuid = run.CustomerUserID
	}
	return map[string]any{"id": run.ID, "applicant_id": run.ApplicantID, "workflow_id": run.WorkflowID,
		"workflow_version_id": 1, "status": run.Status, "dashboard_url": "https://dashboard.onfido.com/results/" + run.ID,
		"output": map[string]any{}, "reasons": []any{}, "error": nil, "sdk_token": tok, "customer_user_id": cuid, "tags": []any{},
		"link": map[string]any{"url": sandbox.Origin(r) + "/wr/" + run.LinkToken, "completed_redirect_url": redirect,
			"expired_redirect_url": nil, "expires_at": nil, "language": nil},
		"created_at": stamp(run.CreatedAt), "updated_at": stamp(run.UpdatedAt)}
}

// createRun is POST /v3.6/workflow_runs.
func (e *Emulator) createRun(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if !e.auth(w, r) {
		return
	}
	var in struct {
		WorkflowID     string `json:"workflow_id"`
		ApplicantID    string `json:"applicant_id"`
		CustomerUserID string `json:"customer_user_id"`
		Link           struct {
			CompletedRedirectURL string `json:"completed_redirect_url"`
		} `json:"link"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	switch {
	case in.WorkflowID == "":
		invalid(w, "workflow_id", "can't be blank")
		return
	case in.ApplicantID == "":
		invalid(w, "applicant_id", "can't be blank")
		return
	case len(in.CustomerUserID) > 256:
		invalid(w, "customer_user_id", "is too long (maximum is 256 characters)")
		return
	case in.WorkflowID != e.WorkflowID:
		writeError(w, http.StatusNotFound, "Workflow not found")
		return
	}
	if u := in.Link.CompletedRedirectURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			invalid(w, "link.completed_redirect_url", "is not a valid URL")
			return
		}
	}
	now := time.Now().UTC()
	run := &emuRun{ID: uuid.NewString(), ApplicantID: in.ApplicantID, WorkflowID: in.WorkflowID, Status: "awaiting_input",
		LinkToken: sandbox.RandomHex(16), CustomerUserID: in.CustomerUserID, Redirect: in.Link.CompletedRedirectURL, CreatedAt: now, UpdatedAt: now}
	if !e.NoRunSDKToken {
		run.SDKToken = e.mintSDKToken(in.ApplicantID, run.ID, "")
	}
	e.state.mu.Lock()
	defer e.state.mu.Unlock()
	if e.state.applicants[in.ApplicantID] == nil {
		writeError(w, http.StatusNotFound, "Applicant not found")
		return
	}
	e.state.runs[run.ID] = run
	e.state.byLink[run.LinkToken] = run
	e.state.latest[run.ApplicantID] = run
	sandbox.WriteJSON(w, http.StatusCreated, e.runJSON(r, run))
}

// getRun is GET /v3.6/workflow_runs/{id}.
func (e *Emulator) getRun(w http.ResponseWriter, r *http.Request, p map[string]string) {
	if !e.auth(w, r) {
		return
	}
	e.state.mu.Lock()
	defer e.state.mu.Unlock()
	run := e.state.runs[p["id"]]
	if run == nil {
		writeError(w, http.StatusNotFound, "Workflow run not found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, e.runJSON(r, run))
}

// sdkToken is POST /v3.6/sdk_token: 200 {"token"}.
func (e *Emulator) sdkToken(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if !e.auth(w, r) {
		return
	}
	var in struct {
		ApplicantID string `json:"applicant_id"`
		Referrer    string `json:"referrer"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if in.ApplicantID == "" {
		invalid(w, "applicant_id", "can't be blank")
		return
	}
	e.state.mu.Lock()
	known := e.state.applicants[in.ApplicantID] != nil
	e.state.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, "Applicant not found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"token": e.mintSDKToken(in.ApplicantID, "", in.Referrer)})
}

// sdkScreen stands in for the Web SDK opened with a token
// (GET /sdk?token=...): the token must be one the emulator minted and not
// expired; the run is the token's own, else the applicant's latest.
func (e *Emulator) sdkScreen(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	tok := r.URL.Query().Get("token")
	claims, err := e.host.Signer.Verify(tok)
	if err != nil {
		http.Error(w, "This SDK token is not valid or has expired.", http.StatusUnauthorized)
		return
	}
	applicant, _ := claims["applicant_id"].(string)
	runID, _ := claims["workflow_run_id"].(string)
	e.state.mu.Lock()
	run := e.state.runs[runID]
	if run == nil {
		run = e.state.latest[applicant]
	}
	e.state.mu.Unlock()
	if run == nil {
		http.Error(w, "No workflow run for this applicant.", http.StatusNotFound)
		return
	}
	e.decide(w, r, run, "/sdk?token="+url.QueryEscape(tok), "Onfido SDK (sandbox)")
}

// hosted is the run's hosted link (link.url).
func (e *Emulator) hosted(w http.ResponseWriter, r *http.Request, p map[string]string) {
	e.state.mu.Lock()
	run := e.state.byLink[p["link"]]
	e.state.mu.Unlock()
	if run == nil {
		http.Error(w, "This verification link is not valid.", http.StatusNotFound)
		return
	}
	e.decide(w, r, run, "/wr/"+run.LinkToken, "Onfido verification (sandbox)")
}

// decide shows the outcome page (GET) or completes the run (POST): its
// status changes and a signed workflow_run.completed webhook is sent.
func (e *Emulator) decide(w http.ResponseWriter, r *http.Request, run *emuRun, action, title string) {
	outcome := sandbox.OutcomeForm(w, r, title, action, outcomes)
	if outcome == "" {
		return
	}
	now := time.Now().UTC()
	e.state.mu.Lock()
	// A run in review can still be decided (a reviewer's decision).
	if _, final := results[run.Status]; final && run.Status != "review" {
		e.state.mu.Unlock()
		http.Error(w, "This workflow run is already complete.", http.StatusConflict)
		return
	}
	run.Status, run.UpdatedAt = outcome, now
	resource := e.runJSON(r, run)
	redirect := run.Redirect
	body, _ := json.Marshal(map[string]any{"payload": map[string]any{
		"resource_type": "workflow_run", "action": "workflow_run.completed",
		"object": map[string]any{"id": run.ID, "status": outcome, "completed_at_iso8601": now.Format(time.RFC3339),
			"href": sandbox.Origin(r) + "/v3.6/workflow_runs/" + run.ID},
		"resource": resource}})
	e.state.mu.Unlock()
	e.send(body, nil)
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<!doctype html><title>Done</title><p>Thank you. Your verification was submitted ("+outcome+").</p>")
}

// send delivers a webhook signed as Onfido signs: X-SHA2-Signature, the hex
// HMAC-SHA256 of the body with the webhook token; any 20x is delivered.
func (e *Emulator) send(body []byte, done chan<- error) {
	if e.WebhookToken == "" {
		if done != nil {
			done <- nil
		}
		return
	}
	e.Webhooks.SendSigned(e.host.Logger, body, func(b []byte) http.Header {
		return http.Header{"X-Sha2-Signature": {sign([]byte(e.WebhookToken), b)}}
	}, nil, done)
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
