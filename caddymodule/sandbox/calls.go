package sandbox

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Credential kinds recorded with each call.
const (
	CredNone      = "none"
	CredAPIKey    = "api_key"
	CredSession   = "session_token"
	CredExecutive = "executive_token"
	CredBoth      = "api_key+executive_token"
	CredInvalid   = "invalid"
)

// Calls counts calls by "provider op credential".
type Calls struct {
	mu sync.Mutex
	// m is keyed by the parts, joined only by Snapshot: a call then
	// allocates no key.
	m map[callKey]int
}

type callKey struct{ provider, op, cred string }

// NewCalls returns empty counters.
func NewCalls() *Calls { return &Calls{m: map[callKey]int{}} }

// Record counts one call.
func (c *Calls) Record(provider, op, cred string) {
	c.mu.Lock()
	c.m[callKey{provider, op, cred}]++
	c.mu.Unlock()
}

// Snapshot copies the counters.
func (c *Calls) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k.provider+" "+k.op+" "+k.cred] += v // parts with spaces may join alike
	}
	return out
}

// Reset zeroes the counters.
func (c *Calls) Reset() {
	c.mu.Lock()
	c.m = map[callKey]int{}
	c.mu.Unlock()
}

// Fault is a rule that makes matching calls misbehave.
type Fault struct {
	// Provider and Op select calls ("" or "*" match all).
	Provider string `json:"provider,omitempty"`
	Op       string `json:"op,omitempty"`
	// Latency delays the answer (a Go duration string).
	Latency string `json:"latency,omitempty"`
	// Status, when set, is answered instead of the real response, with
	// Body (or a JSON error) and RetryAfter seconds.
	Status     int    `json:"status,omitempty"`
	Body       string `json:"body,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
	// Malformed answers 200 with a truncated JSON body.
	Malformed bool `json:"malformed,omitempty"`
	// Reset closes the connection without an answer.
	Reset bool `json:"reset,omitempty"`
	// Times is how many calls the rule applies to (0: until cleared).
	Times int `json:"times,omitempty"`
}

// Faults holds the fault rules.
type Faults struct {
	mu    sync.Mutex
	rules []*Fault
	// some is len(rules) > 0 (set under mu): calls skip the lock when no
	// rule is configured, as almost always.
	some atomic.Bool
}

// Add appends a rule.
func (f *Faults) Add(r Fault) {
	f.mu.Lock()
	f.rules = append(f.rules, &r)
	f.some.Store(true)
	f.mu.Unlock()
}

// Clear removes every rule.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.some.Store(false)
	f.mu.Unlock()
}

func (f *Faults) take(provider, op string) *Fault {
	if !f.some.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if (r.Provider == "" || r.Provider == "*" || r.Provider == provider) && (r.Op == "" || r.Op == "*" || r.Op == op) {
			cp := *r
			if r.Times > 0 {
				r.Times--
				if r.Times == 0 {
					f.rules = append(f.rules[:i], f.rules[i+1:]...)
					f.some.Store(len(f.rules) > 0)
				}
			}
			return &cp
		}
	}
	return nil
}

// Apply runs the first matching rule. It reports whether it answered the
// request (the emulator must then stop); a latency-only rule just delays.
// An injected error without a body has Incode's error shape.
func (f *Faults) Apply(w http.ResponseWriter, r *http.Request, provider, op string) bool {
	return f.ApplyWith(w, r, provider, op, nil)
}

// ErrorShape builds an emulator's error body from a status, a message and
// the request path: each provider answers errors in its own shape.
type ErrorShape func(status int, msg, path string) any

// ApplyWith is Apply with the emulator's own error shape (nil: APIError).
func (f *Faults) ApplyWith(w http.ResponseWriter, r *http.Request, provider, op string, shape ErrorShape) bool {
	if shape == nil {
		shape = func(status int, msg, path string) any { return APIError(status, msg, path) }
	}
	return f.ApplyWriting(w, r, provider, op, func(w http.ResponseWriter, status int, msg string) {
		WriteJSON(w, status, shape(status, msg, r.URL.Path))
	})
}

func itoa(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// APIError is the error body shape of Incode's API, used by every emulator.
func APIError(status int, msg, path string) map[string]any {
	return map[string]any{
		"timestamp": time.Now().UnixMilli(),
		"status":    status,
		"error":     http.StatusText(status),
		"message":   msg,
		"path":      path,
	}
}

// Request is what an emulator received, for tests that must prove where a
// request did or did not go.
type Request struct {
	Provider  string `json:"provider"`
	Method    string `json:"method"`
	Path      string `json:"path"` // escaped, as received
	Host      string `json:"host"`
	APIKey    bool   `json:"api_key"`   // an API key was sent
	Executive bool   `json:"executive"` // an executive token was sent
}

// RequestLog keeps the last MaxRequests requests.
type RequestLog struct {
	mu sync.Mutex
	// rs is a ring once full, its oldest entry at next: a full log then
	// overwrites in place rather than reallocating as it slides.
	rs   []Request
	next int
}

// MaxRequests bounds the request log.
const MaxRequests = 2000

// Record appends one request.
func (l *RequestLog) Record(provider string, r *http.Request, apiKey, executive bool) {
	req := Request{Provider: provider, Method: r.Method, Path: r.URL.EscapedPath(), Host: r.Host, APIKey: apiKey, Executive: executive}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rs) < MaxRequests {
		l.rs = append(l.rs, req)
		return
	}
	l.rs[l.next] = req
	l.next = (l.next + 1) % MaxRequests
}

// Snapshot copies the log, oldest first.
func (l *RequestLog) Snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(append([]Request{}, l.rs[l.next:]...), l.rs[:l.next]...)
}

// Reset empties the log.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	l.rs, l.next = nil, 0
	l.mu.Unlock()
}
