package caddymodule

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Caddy's access log records every request header, and redacts only
// Cookie, Set-Cookie, Authorization and Proxy-Authorization. It copies the
// request before any handler runs, so a handler cannot remove a header from
// that copy. For a request under the prefix that carries a credential
// header (a provider's token or key header, or the configured webhook_auth
// header), the handler therefore writes the access log line itself, on the
// same loggers and in the same shape with those headers' values replaced by
// REDACTED, and tells Caddy to skip its own (the log_skip variable). The
// user edits no log filter. Fields added by log_append are not in that
// line; duration counts from the idv handler.

// CredentialHeaders are the request headers whose values never reach an
// access log line of a request under the prefix (besides the configured
// webhook_auth header). Providers add their own on their routes
// (Route.CredentialHeaders, Forward.TokenHeader).
var CredentialHeaders = []string{
	"X-Api-Key", "X-Token", "X-Webhook-Secret", "X-Auth-Token", "Api-Key", "X-Client-Secret",
}

// credentialQuery are the query parameters (lower case) whose values never
// reach an access log line idv writes: a key pushed in the query, a token,
// a uniqueId (it resumes a session).
var credentialQuery = map[string]bool{"x-api-key": true, "token": true, "uniqueid": true, "clientkey": true, "authorization": true}

// accessLogModule gives the handler the loggers of Caddy's access log
// (http.log.access and the custom logs that include its names).
type accessLogModule struct{}

func (accessLogModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.log.access", New: func() caddy.Module { return accessLogModule{} }}
}

// accessLogger is set up at provision.
type accessLogger struct {
	srv    *caddyhttp.Server
	logger *zap.Logger
	hide   map[string]bool // canonical header names
}

func newAccessLogger(ctx caddy.Context, extra string) *accessLogger {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return nil
	}
	al := &accessLogger{srv: srv, logger: ctx.Logger(accessLogModule{}), hide: map[string]bool{}}
	for _, hd := range CredentialHeaders {
		al.hide[http.CanonicalHeaderKey(hd)] = true
	}
	if extra != "" {
		al.hide[http.CanonicalHeaderKey(extra)] = true
	}
	return al
}

// hideHeaders adds request headers whose values are never logged.
func (al *accessLogger) hideHeaders(names ...string) {
	if al == nil {
		return
	}
	for _, hd := range names {
		al.hide[http.CanonicalHeaderKey(hd)] = true
	}
}

// wrap takes over the access log line of r when it carries a credential
// header and Caddy would log it; it returns the writer to use and the func
// to call once the request is answered.
func (al *accessLogger) wrap(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if al == nil || al.srv.Logs == nil || !(al.carries(r.Header) || carriesQuery(r.URL.RawQuery)) || !al.shouldLog(r) {
		return w, nil
	}
	if skip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.LogSkipVar).(bool); skip {
		return w, nil
	}
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	start := time.Now()
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	logged := &http.Request{}
	*logged = *r
	logged.Header = r.Header.Clone() // as Caddy: the headers as they came
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		logged.Method, logged.RequestURI, logged.RemoteAddr = orig.Method, orig.RequestURI, orig.RemoteAddr
	}
	var body *countingReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingReader{r: r.Body}
		r.Body = body
	}
	return rec, func() { al.write(logged, rec, time.Since(start), body) }
}

// carriesQuery reports whether a raw query may name a credential parameter
// (a uniqueId resumes a session; a key or token is a secret), in any
// separator or encoding a parser might honour.
func carriesQuery(raw string) bool {
	if raw == "" {
		return false
	}
	for part := range strings.FieldsFuncSeq(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err != nil || credentialQuery[strings.ToLower(dk)] {
			return true
		}
	}
	return false
}

func (al *accessLogger) carries(h http.Header) bool {
	for name := range h {
		if al.hide[name] {
			return true
		}
	}
	return false
}

// shouldLog is Caddy's rule (Server.shouldLogRequest).
func (al *accessLogger) shouldLog(r *http.Request) bool {
	host := hostOnly(r.Host)
	for name := range al.srv.Logs.LoggerNames {
		if certmagic.MatchWildcard(host, name) {
			return true
		}
	}
	for _, dh := range al.srv.Logs.SkipHosts {
		if certmagic.MatchWildcard(host, dh) {
			return false
		}
	}
	return !al.srv.Logs.SkipUnmappedHosts
}

func hostOnly(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return host
}

// loggers are Caddy's (ServerLogConfig.wrapLogger).
func (al *accessLogger) loggers(r *http.Request) []*zap.Logger {
	var names []string
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.AccessLoggerNameVarKey).([]any); ok {
		for _, n := range v {
			s, _ := n.(string)
			names = append(names, s)
		}
	} else {
		names = al.loggerNames(hostOnly(r.Host))
	}
	out := make([]*zap.Logger, 0, len(names))
	for _, n := range names {
		if n == "" {
			out = append(out, al.logger)
		} else {
			out = append(out, al.logger.Named(n))
		}
	}
	return out
}

func (al *accessLogger) loggerNames(host string) []string {
	slc := al.srv.Logs
	host = strings.ToLower(host)
	if names, ok := slc.LoggerNames[host]; ok {
		return names
	}
	labels := strings.Split(host, ".")
	for i := range labels {
		if labels[i] == "" {
			continue
		}
		labels[i] = "*"
		if names, ok := slc.LoggerNames[strings.Join(labels, ".")]; ok {
			return names
		}
	}
	return []string{slc.DefaultLoggerName}
}

func (al *accessLogger) write(r *http.Request, rec caddyhttp.ResponseRecorder, d time.Duration, body *countingReader) {
	status := rec.Status()
	level := zapcore.InfoLevel
	if status >= 500 {
		level = zapcore.ErrorLevel
	}
	if name, ok := caddyhttp.GetVar(r.Context(), caddyhttp.LogLevelVar).(string); ok {
		if l, err := zapcore.ParseLevel(name); err == nil && l >= zapcore.DebugLevel && l <= zapcore.ErrorLevel {
			level = l
		}
	}
	creds := al.srv.Logs.ShouldLogCredentials
	read := 0
	if body != nil {
		read = body.n
	}
	userID := ""
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		userID, _ = repl.GetString("http.auth.user.id")
	}
	fields := []zap.Field{
		zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: al.redacted(r), ShouldLogCredentials: creds}),
		zap.Int("bytes_read", read),
		zap.String("user_id", userID),
		zap.Duration("duration", d),
		zap.Int("size", rec.Size()),
		zap.Int("status", status),
		zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: rec.Header(), ShouldLogCredentials: creds}),
	}
	for _, l := range al.loggers(r) {
		if ce := l.Check(level, "handled request"); ce != nil {
			ce.Write(fields...)
		}
	}
}

// redacted is r with the credential headers' values replaced.
func (al *accessLogger) redacted(r *http.Request) *http.Request {
	for name := range r.Header {
		if al.hide[name] {
			r.Header[name] = []string{"REDACTED"}
		}
	}
	if i := strings.IndexByte(r.RequestURI, '?'); i >= 0 {
		q, err := url.ParseQuery(r.RequestURI[i+1:])
		changed := err != nil
		for k, vs := range q {
			if credentialQuery[strings.ToLower(k)] {
				for j := range vs {
					vs[j] = "REDACTED"
				}
				changed = true
			}
		}
		if err != nil {
			r.RequestURI = r.RequestURI[:i+1] + "REDACTED" // unparsable: nothing of it
		} else if changed {
			r.RequestURI = r.RequestURI[:i+1] + q.Encode()
		}
	}
	return r
}

type countingReader struct {
	r io.ReadCloser
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
