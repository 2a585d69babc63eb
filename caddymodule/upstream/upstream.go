// Package upstream makes the JSON calls a provider needs, with a deadline,
// typed errors that map to the statuses the routes document, and retries only
// where they are safe.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// MaxResponse is the largest JSON body read from a provider.
const MaxResponse = 4 << 20

// StatusError is a non-2xx answer from the provider.
type StatusError struct {
	Status     int
	RetryAfter time.Duration
	Body       []byte // for logs and for providers that inspect it; never sent to clients
}

func (e *StatusError) Error() string { return fmt.Sprintf("provider answered %d", e.Status) }

// ErrMalformed is returned when a 2xx body is not the JSON expected.
var ErrMalformed = errors.New("provider answered malformed JSON")

// Observer is told of every call (metrics hook in here).
type Observer func(op string, status int, d time.Duration)

// Client calls one provider.
type Client struct {
	// Base is the provider's base URL; every call goes to this host.
	Base *url.URL
	// HTTP performs the calls; its Transport is shared, its Timeout unused
	// (the deadline comes from Timeout via the context).
	HTTP *http.Client
	// Timeout bounds one call, retries included.
	Timeout time.Duration
	// Retries is how many times an idempotent call is retried after a
	// connection failure, a 5xx or a 429 (default 1).
	Retries int
	// MaxRetryAfter caps how long a 429's Retry-After is waited for before a
	// retry; a longer wait is passed on to the client as a 429 instead.
	MaxRetryAfter time.Duration
	Logger        *zap.Logger
	Provider      string
	Observe       Observer
}

// ForHost is the client a provider calls its API with: the handler's HTTP
// client, timeout, logger and metrics, one retry of idempotent calls.
func ForHost(h *provider.Host, name string, base *url.URL) *Client {
	return &Client{Base: base, HTTP: h.HTTP, Timeout: h.Timeout, Retries: 1, Logger: h.Logger, Provider: name, Observe: h.Observe}
}

// Request is one call.
type Request struct {
	// Op names the call in logs and metrics, e.g. "omni/start".
	Op     string
	Method string
	// Path is joined to Base's path; it is built by the provider, never from
	// client input without normalisation.
	Path   string
	Query  url.Values
	Header http.Header
	// Body is encoded as JSON when not nil.
	Body any
	// Idempotent calls may be retried. A session-creating POST never is, so
	// one /start never creates two provider sessions.
	Idempotent bool
	// LogFields are added to the call's log line (ids, never secrets).
	LogFields []zap.Field
}

// Do performs req and decodes a 2xx JSON answer into out (when not nil).
// It returns the raw body too.
func (c *Client) Do(ctx context.Context, req Request, out any) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	retries := c.Retries
	if !req.Idempotent {
		retries = 0
	}
	var body []byte
	var err error
	for attempt := 0; ; attempt++ {
		body, err = c.once(ctx, req)
		if err == nil || attempt >= retries || !retryable(err) {
			break
		}
		wait := time.Duration(attempt+1) * 100 * time.Millisecond
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
			if se.RetryAfter > c.maxRetryAfter() {
				break // too long to hold the client's request: pass the 429 on
			}
			wait = se.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return body, err
	}
	if out != nil {
		if jerr := json.Unmarshal(body, out); jerr != nil {
			return body, fmt.Errorf("%w: %v", ErrMalformed, jerr)
		}
	}
	return body, nil
}

func (c *Client) maxRetryAfter() time.Duration {
	if c.MaxRetryAfter > 0 {
		return c.MaxRetryAfter
	}
	return 2 * time.Second
}

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

func (c *Client) once(ctx context.Context, req Request) ([]byte, error) {
	u := *c.Base
	u.Path = strings.TrimSuffix(c.Base.Path, "/") + req.Path
	u.RawPath = ""
	u.RawQuery = req.Query.Encode()
	var rd io.Reader
	if req.Body != nil {
		b, err := json.Marshal(req.Body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	hr.Header.Set("Accept", "application/json")
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.HTTP.Do(hr)
	d := time.Since(start)
	status := 0
	var body []byte
	if err == nil {
		status = resp.StatusCode
		body, err = io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
		resp.Body.Close()
	}
	c.log(req, status, d, err)
	if c.Observe != nil {
		c.Observe(req.Op, status, d)
	}
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return body, &StatusError{Status: status, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")), Body: body}
	}
	return body, nil
}

func (c *Client) log(req Request, status int, d time.Duration, err error) {
	if c.Logger == nil {
		return
	}
	level, msg := zap.InfoLevel, "provider call"
	if err != nil {
		level, msg = zap.WarnLevel, "provider call failed"
	}
	ce := c.Logger.Check(level, msg)
	if ce == nil {
		return // every call of every request passes here: build nothing
	}
	fields := append([]zap.Field{
		zap.String("provider", c.Provider),
		zap.String("op", req.Op),
		zap.String("method", req.Method),
		zap.Int("status", status),
		zap.Duration("duration", d),
	}, req.LogFields...)
	if err != nil {
		// The host and the cause say what to check (api_url, DNS, the
		// provider's certificate, a firewall); neither holds a secret.
		fields = append(fields, zap.String("host", c.Base.Host), zap.String("error", errorClass(err)))
	}
	ce.Write(fields...)
}

// errorClass describes a transport error without its text, which can carry
// URLs with query strings.
func errorClass(err error) string { return Cause(err) }

// Cause names why a provider could not be reached, in words a person can
// act on: "connection refused", "DNS lookup failed: no such host", "TLS
// certificate not trusted", "timeout", ... It never quotes err's text, which
// can carry URLs with query strings.
func Cause(err error) string {
	var ne net.Error
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var notTLS tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "DNS lookup failed: no such host"
		}
		if dns.IsTimeout {
			return "DNS lookup failed: timeout"
		}
		return "DNS lookup failed"
	case errors.As(err, &unknownCA):
		return "TLS certificate not trusted (unknown authority)"
	case errors.As(err, &badHost):
		return "TLS certificate is for another host"
	case errors.As(err, &invalid):
		return "TLS certificate invalid (expired or not yet valid?)"
	case errors.As(err, &verify):
		return "TLS certificate not trusted"
	case errors.As(err, &notTLS), err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS handshake failed: the server does not speak HTTPS"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	default:
		return "connection failed"
	}
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// ClientError maps an error from Do to what the browser is told: 504 for a
// timeout, 429 (with Retry-After) when the provider rate-limits us, 502 for
// anything else the provider did wrong. Errors that are already
// *provider.Error pass through.
func ClientError(err error) *provider.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	var se *StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se) && se.Status == http.StatusTooManyRequests:
		ra := se.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		return &provider.Error{Status: http.StatusTooManyRequests, Msg: "the provider is rate limiting requests; retry later", RetryAfter: ra, Err: err}
	case errors.As(err, &se):
		return &provider.Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("upstream answered %d", se.Status), Err: err}
	case errors.Is(err, ErrMalformed):
		return &provider.Error{Status: http.StatusBadGateway, Msg: "upstream answered malformed JSON", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		// The cause is a class, not err: a *url.Error carries the URL and
		// its query string into the log line.
		return &provider.Error{Status: http.StatusGatewayTimeout, Msg: "upstream timed out", Err: errors.New("timeout")}
	case errors.Is(err, context.Canceled):
		return &provider.Error{Status: 499, Msg: "request canceled", Err: errors.New("canceled")}
	default:
		cause := errorClass(err)
		return &provider.Error{Status: http.StatusBadGateway, Msg: "upstream unreachable: " + cause, Err: errors.New(cause)}
	}
}

// Status returns the provider's status code in err, or 0.
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}
