package sandbox

// The emulator kit: what every provider emulator needs besides its own
// logic. A route table and its dispatcher (method checks, call and request
// records, faults answered in the provider's error shape), the hosted
// pass / fail / review page, and a signed-webhook sender with the provider's
// retry schedule.

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// KitRoute is one route of an emulator.
type KitRoute struct {
	// Methods allowed on the route; none: any method (the route's handler
	// checks).
	Methods []string
	// Pattern is the path; a segment written {name} matches any one
	// non-empty segment, passed to Handle in params; a last segment "*"
	// matches the rest of the path (even empty), passed as params["*"].
	Pattern string
	// Op names the call in the counters and fault rules
	// (e.g. "v1/sessions"); "{method}" in it stands for the request's
	// method. Empty: the route is no call of the provider's API (a
	// sandbox-only page or helper), neither recorded nor faulted by the kit.
	Op string
	// Handle answers the call.
	Handle func(w http.ResponseWriter, r *http.Request, params map[string]string)
}

// Caller is what the records say of a call's credentials.
type Caller struct {
	// Cred is the credential kind in the counters (CredAPIKey...).
	Cred string
	// APIKey and Executive are the request log's flags: an API key (an
	// executive token) was sent.
	APIKey, Executive bool
}

// Kit dispatches an emulator's routes.
type Kit struct {
	// Provider is the provider's name in counters, request records and
	// fault rules.
	Provider string
	// Host is the sandbox's services (set by ProvisionSandbox).
	Host *Host
	// Routes is the route table, matched in order: the first route whose
	// pattern matches decides, with later routes of the very same pattern
	// (other methods).
	Routes []KitRoute
	// Error writes an error in the provider's own shape; nil: Shape.
	Error func(w http.ResponseWriter, status int, msg string)
	// Shape is the provider's error body when it names the request's path
	// (used when Error is nil; nil: APIError, Incode's shape).
	Shape ErrorShape
	// Credential names the credential a call carries, for the counters:
	// CredAPIKey, CredSession, CredInvalid, CredNone... Nil: CredNone.
	Credential func(r *http.Request) string
	// Caller, when set, replaces Credential: the records of a call to rt.
	Caller func(r *http.Request, rt *KitRoute) Caller
	// RecordRefused records a call with a method its route does not take
	// (and applies the faults) before answering 405, as the first emulators
	// counted them.
	RecordRefused bool
	// MethodMessage is the 405 message; default "method <M> is not allowed".
	MethodMessage string
}

// match reports whether path matches pattern, with its parameters.
func match(pattern, path string) (map[string]string, bool) {
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		rest, ok := strings.CutPrefix(path, prefix+"/")
		if !ok {
			return nil, false
		}
		return map[string]string{"*": rest}, true
	}
	// Segment by segment, without splitting (this runs for every route
	// tried on every call).
	var params map[string]string
	for {
		p, prest, pmore := strings.Cut(pattern, "/")
		x, xrest, xmore := strings.Cut(path, "/")
		if pmore != xmore {
			return nil, false // not as many segments
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if x == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = x
		} else if p != x {
			return nil, false
		}
		if !pmore {
			return params, true
		}
		pattern, path = prest, xrest
	}
}

// Fail writes an error in the provider's shape.
func (k *Kit) Fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if k.Error != nil {
		k.Error(w, status, msg)
		return
	}
	shape := k.Shape
	if shape == nil {
		shape = func(status int, msg, path string) any { return APIError(status, msg, path) }
	}
	WriteJSON(w, status, shape(status, msg, r.URL.Path))
}

// record counts and logs a call to rt and applies the fault rules; it
// reports whether a fault answered.
func (k *Kit) record(w http.ResponseWriter, r *http.Request, rt *KitRoute) bool {
	if rt.Op == "" {
		return false
	}
	c := Caller{Cred: CredNone}
	switch {
	case k.Caller != nil:
		c = k.Caller(r, rt)
	case k.Credential != nil:
		c.Cred = k.Credential(r)
		c.APIKey, c.Executive = c.Cred == CredAPIKey || c.Cred == CredBoth, c.Cred == CredExecutive || c.Cred == CredBoth
	}
	op := strings.ReplaceAll(rt.Op, "{method}", r.Method)
	k.Host.Calls.Record(k.Provider, op, c.Cred)
	k.Host.Requests.Record(k.Provider, r, c.APIKey, c.Executive)
	return k.Host.Faults.ApplyWriting(w, r, k.Provider, op, func(w http.ResponseWriter, status int, msg string) {
		k.Fail(w, r, status, msg)
	})
}

// Serve answers r when it is one of the kit's routes and reports whether it
// did. A known path with another method is a 405 in the provider's shape.
// Each call is counted (provider, op, credential), recorded, and the fault
// rules are applied before the route runs.
func (k *Kit) Serve(w http.ResponseWriter, r *http.Request) bool {
	var allowed []string
	var first *KitRoute
	for i := range k.Routes {
		rt := &k.Routes[i]
		if first != nil && rt.Pattern != first.Pattern {
			continue
		}
		params, ok := match(rt.Pattern, r.URL.Path)
		if !ok {
			continue
		}
		if first == nil {
			first = rt
		}
		if len(rt.Methods) > 0 && !slices.Contains(rt.Methods, r.Method) {
			allowed = append(allowed, rt.Methods...)
			continue
		}
		if !k.record(w, r, rt) {
			rt.Handle(w, r, params)
		}
		return true
	}
	if first == nil {
		return false
	}
	if k.RecordRefused && k.record(w, r, first) {
		return true
	}
	msg := k.MethodMessage
	if msg == "" {
		msg = "method " + r.Method + " is not allowed"
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	k.Fail(w, r, http.StatusMethodNotAllowed, msg)
	return true
}

// ApplyWriting is Apply answering injected statuses without a body with
// writeErr, in the provider's error shape (nil: Incode's shape, as Apply).
func (f *Faults) ApplyWriting(w http.ResponseWriter, r *http.Request, provider, op string, writeErr func(w http.ResponseWriter, status int, msg string)) bool {
	if writeErr == nil {
		return f.ApplyWith(w, r, provider, op, nil)
	}
	rule := f.take(provider, op)
	if rule == nil {
		return false
	}
	if d, err := time.ParseDuration(rule.Latency); err == nil && d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return true
		}
	}
	switch {
	case rule.Reset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return true
		}
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream
	case rule.Malformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"status": "succ`))
		return true
	case rule.Status != 0:
		if rule.RetryAfter > 0 {
			w.Header().Set("Retry-After", itoa(rule.RetryAfter))
		}
		if rule.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rule.Status)
			_, _ = w.Write([]byte(rule.Body))
			return true
		}
		writeErr(w, rule.Status, "injected fault")
		return true
	}
	return false
}

// Outcome is one choice of the hosted outcome page.
type Outcome struct {
	// Value is posted back as the form field "outcome".
	Value string
	// Label is the button's text.
	Label string
}

// outcomePage is styled like the other hosted stand-ins (the shared shell,
// with its "sandbox" badge). Each outcome is its own form: one click decides.
var outcomePage = NewPage(`{{with .Data}}{{$action := .Action}}<p>Sandbox: choose the outcome of this verification.</p>
{{range .Outcomes}}<form method="post" action="{{$action}}"><input type="hidden" name="outcome" value="{{.Value}}">
<button type="submit" id="outcome-{{.Value}}" data-outcome="{{.Value}}">{{.Label}}</button></form>
{{end}}{{end}}`)

// WriteOutcomePage writes the hosted page a user completes a sandbox
// verification on: one button per outcome, each posting "outcome" to
// action. Everything is HTML-escaped. The CSP allows the inline stylesheet
// and no script; it leaves form-action open so that the emulator's answer
// to the POST may redirect back to the site the person came from (Chrome
// applies form-action to that redirect).
func WriteOutcomePage(w http.ResponseWriter, title, action string, outcomes []Outcome) {
	var b bytes.Buffer
	// "Veriff sandbox verification": the heading names the provider, the
	// shell adds the badge.
	provider, rest, _ := strings.Cut(title, " sandbox")
	_ = outcomePage.Execute(&b, PageData{Provider: provider, Title: strings.TrimSpace(rest),
		Data: struct {
			Action   string
			Outcomes []Outcome
		}{action, outcomes}})
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// ReadOutcome returns the outcome posted from the page, or "" when it is
// none of outcomes.
func ReadOutcome(r *http.Request, outcomes []Outcome) string {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<16)
	v := r.PostFormValue("outcome")
	for _, o := range outcomes {
		if o.Value == v {
			return v
		}
	}
	return ""
}

// SendSigned delivers body as the provider does: a POST with the headers
// sign returns for the exact bytes sent, retried on the configured schedule
// (webhook_retry) until delivered reports success (nil: any 2xx). It
// returns at once; done (if not nil) receives the final delivery error.
func (wh *Webhooks) SendSigned(logger *zap.Logger, body []byte, sign func(body []byte) http.Header,
	delivered func(status int) bool, done chan<- error) {
	if delivered == nil {
		delivered = func(status int) bool { return status >= 200 && status < 300 }
	}
	wh.send(logger, func(ctx context.Context, target string) error {
		var h http.Header
		if sign != nil {
			h = sign(body)
		}
		return post(ctx, target, body, h, func(resp *http.Response) bool { return delivered(resp.StatusCode) })
	}, done)
}
