package sandbox

// The emulator kit: what every provider emulator needs besides its own
// logic. A route table and its dispatcher (method checks, call and request
// records, faults answered in the provider's error shape), the hosted
// pass / fail / review page, and a signed-webhook sender with the provider's
// retry schedule.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// KitRoute is one route of an emulator.
type KitRoute struct {
	// Methods allowed on the route (at least one).
	Methods []string
	// Pattern is the path; a segment written {name} matches any one
	// non-empty segment, passed to Handle in params.
	Pattern string
	// Op names the call in the counters and fault rules
	// (e.g. "v1/sessions").
	Op string
	// Handle answers the call.
	Handle func(w http.ResponseWriter, r *http.Request, params map[string]string)
}

// Kit dispatches an emulator's routes.
type Kit struct {
	// Provider is the provider's name in counters, request records and
	// fault rules.
	Provider string
	// Host is the sandbox's services (set by ProvisionSandbox).
	Host *Host
	// Routes is the route table.
	Routes []KitRoute
	// Error writes an error in the provider's own shape.
	Error func(w http.ResponseWriter, status int, msg string)
	// Credential names the credential a call carries, for the counters:
	// CredAPIKey, CredSession, CredInvalid, CredNone... Nil: CredNone.
	Credential func(r *http.Request) string
}

// match reports whether path matches pattern, with its parameters.
func match(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}

// Serve answers r when it is one of the kit's routes and reports whether it
// did. A known path with another method is a 405 in the provider's shape.
// Each call is counted (provider, op, credential), recorded, and the fault
// rules are applied before the route runs.
func (k *Kit) Serve(w http.ResponseWriter, r *http.Request) bool {
	var allowed []string
	for _, rt := range k.Routes {
		params, ok := match(rt.Pattern, r.URL.Path)
		if !ok {
			continue
		}
		if !slices.Contains(rt.Methods, r.Method) {
			allowed = append(allowed, rt.Methods...)
			continue
		}
		cred := CredNone
		if k.Credential != nil {
			cred = k.Credential(r)
		}
		k.Host.Calls.Record(k.Provider, rt.Op, cred)
		k.Host.Requests.Record(k.Provider, r, cred == CredAPIKey || cred == CredBoth, cred == CredExecutive || cred == CredBoth)
		if k.Host.Faults.ApplyWriting(w, r, k.Provider, rt.Op, k.Error) {
			return true
		}
		rt.Handle(w, r, params)
		return true
	}
	if allowed == nil {
		return false
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	k.Error(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed")
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
// (webhook_retry) until delivered reports success (nil: any 2xx). The URL
// may hold global placeholders ({env.X}), resolved at each send. It returns
// at once; done (if not nil) receives the final delivery error.
func (wh *Webhooks) SendSigned(logger *zap.Logger, body []byte, sign func(body []byte) http.Header,
	delivered func(status int) bool, done chan<- error) {
	target := caddy.NewReplacer().ReplaceKnown(wh.URL, "")
	if target == "" {
		if done != nil {
			done <- nil
		}
		return
	}
	cfg := *wh // a copy: concurrent sends never write the shared settings
	cfg.defaults()
	if delivered == nil {
		delivered = func(status int) bool { return status >= 200 && status < 300 }
	}
	go func() {
		delay := time.Duration(cfg.First)
		var err error
		for attempt := 1; attempt <= cfg.Attempts; attempt++ {
			if err = cfg.deliverSigned(target, body, sign, delivered); err == nil {
				logger.Info("sandbox webhook delivered", zap.Int("attempt", attempt))
				break
			}
			logger.Info("sandbox webhook failed; will retry", zap.Int("attempt", attempt), zap.Error(err))
			if attempt < cfg.Attempts {
				time.Sleep(delay)
				delay = time.Duration(float64(delay) * cfg.Factor)
			}
		}
		if done != nil {
			done <- err
		}
	}()
}

func (wh *Webhooks) deliverSigned(target string, body []byte, sign func([]byte) http.Header, delivered func(int) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(wh.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		for k, vs := range sign(body) {
			req.Header[k] = vs
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !delivered(resp.StatusCode) {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}
