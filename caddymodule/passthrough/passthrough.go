// Package passthrough forwards browser calls to a provider's API under a
// fixed root (a path of its API, such as /0/omni/), with the credential the
// sidecar holds for that browser, streaming bodies both ways.
//
// It fails closed: a path that could leave the root after any decoding or
// normalisation is refused rather than cleaned, and the target host never
// comes from the request.
package passthrough

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// MaxPathLen is the longest path suffix accepted.
const MaxPathLen = 2048

// ErrBadPath is returned by Clean for any path it refuses.
var ErrBadPath = errors.New("path is not allowed")

// Clean checks the escaped path suffix that follows a passthrough route
// (e.g. "get/score" for /api/omni/get/score) and returns it unchanged when
// it is safe to append to the provider's root, or ErrBadPath. It refuses
// rather than repairs: dot segments, empty segments, backslashes, control
// characters, fragments, ';' (a Java upstream may read "..;" as ".."),
// percent-encodings of '/', '\\', '%', ';', '#', '?', control or non-ASCII
// bytes, and percent-encodings of unreserved characters (RFC 3986 letters,
// digits, '-', '.', '_', '~'). The last rule keeps every check on the path
// (the billable-call filters of the providers, say) looking at the path the
// provider decodes: "session%73" would otherwise pass a check for "sessions"
// and reach the provider as /sessions. A client never needs to encode them.
func Clean(suffix string) (string, error) {
	if suffix == "" || len(suffix) > MaxPathLen || suffix[0] == '/' {
		return "", ErrBadPath
	}
	for i := 0; i < len(suffix); i++ {
		c := suffix[i]
		switch {
		case c == '%':
			if i+2 >= len(suffix) || !ishex(suffix[i+1]) || !ishex(suffix[i+2]) {
				return "", ErrBadPath
			}
			v := unhex(suffix[i+1])<<4 | unhex(suffix[i+2])
			if v == '/' || v == '\\' || v == '%' || v == ';' || v == '#' || v == '?' || v < 0x20 || v >= 0x7f || Unreserved(v) {
				return "", ErrBadPath
			}
			i += 2
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~/!$&'()*+,=:@", c) >= 0:
		default: // '\\', '#', '?', space, controls, non-ASCII
			return "", ErrBadPath
		}
	}
	for _, seg := range strings.Split(suffix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", ErrBadPath
		}
	}
	return suffix, nil
}

// Unreserved reports whether c is an RFC 3986 unreserved character: one
// that means the same encoded or not, so an encoded form only serves to
// hide a path from a check.
func Unreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// Within reports whether the escaped path p, once decoded, lies under root
// with no dot segments: a last check on what is actually sent.
func Within(root, p string) bool {
	dec, err := url.PathUnescape(p)
	if err != nil || !strings.HasPrefix(dec, root) || strings.Contains(dec, "\\") {
		return false
	}
	for _, seg := range strings.Split(strings.TrimPrefix(dec, root), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Strip lists the request headers never forwarded: the client's own
// credentials, anything that describes another host or client, and the
// URL and method overrides some frameworks honour (they would move a
// request outside the root after our checks). Every X-Forwarded-* header is
// dropped too.
var Strip = []string{
	"Cookie", "Authorization", "Proxy-Authorization", "X-Api-Key",
	"X-Token", "Auth", "Pubkey", "Forwarded", "X-Real-Ip", "True-Client-Ip", "X-Client-Ip",
	"X-Host", "X-Original-Url", "X-Rewrite-Url", "X-Original-Host", "X-Http-Method-Override",
	"X-Http-Method", "X-Method-Override", "Via", "Origin", "Referer", "X-Idv",
}

// StripResponse lists the provider's response headers never relayed: they
// would speak for our origin (cookies, CORS, HSTS, alternative services, or
// wiping the site's storage).
var StripResponse = []string{
	"Set-Cookie", "Alt-Svc", "Clear-Site-Data", "Strict-Transport-Security",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
	"Content-Security-Policy", "Refresh", "Link",
}

// Proxy forwards requests to one provider host.
type Proxy struct {
	target *url.URL
	root   string
	rp     *httputil.ReverseProxy
	logger *zap.Logger
}

type ctxKey struct{}

type call struct {
	path   string // escaped path under root, already validated
	header http.Header
}

// New returns a proxy to base (scheme, host and optional base path) whose
// requests must stay under root (e.g. "/0/omni/"). The transport's
// ResponseHeaderTimeout bounds the wait; bodies stream without a deadline.
func New(base *url.URL, root string, transport http.RoundTripper, logger *zap.Logger) *Proxy {
	p := &Proxy{target: base, root: strings.TrimSuffix(base.Path, "/") + root, logger: logger}
	p.rp = &httputil.ReverseProxy{
		Rewrite:    p.rewrite,
		Transport:  transport,
		BufferPool: buffers,
		// Known-length answers go through the server's buffer, as with
		// Caddy's reverse_proxy, instead of a flush after every read;
		// httputil flushes event streams and answers of unknown length at
		// once by itself (TestUnknownLengthAnswersStream).
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			for _, h := range StripResponse {
				resp.Header.Del(h)
			}
			// Served from our origin: never sniffed or rendered as a page,
			// and never kept by a shared cache (the answer is one session's).
			resp.Header.Set("X-Content-Type-Options", "nosniff")
			resp.Header.Set("Cache-Control", "no-store")
			resp.Header.Del("Expires")
			resp.Header.Set("Content-Security-Policy", "sandbox; default-src 'none'")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cause := upstream.Cause(err)
			status, msg := http.StatusBadGateway, "upstream unreachable: "+cause
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				// The core's max_upload limit cut a chunked body.
				status, msg = http.StatusRequestEntityTooLarge, "request body is larger than max_upload"
			case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
				status, msg = http.StatusGatewayTimeout, "upstream timed out"
			}
			if p.logger != nil && !errors.Is(err, context.Canceled) {
				p.logger.Warn("passthrough failed", zap.Int("status", status), zap.String("path", p.root+"…"),
					zap.String("host", base.Host), zap.String("error", cause))
			}
			provider.WriteError(w, &provider.Error{Status: status, Msg: msg}) // sets Cache-Control: no-store
		},
	}
	return p
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// buffers are the copy buffers of every proxy: without a pool each proxied
// response allocates 32 KiB, and the garbage collector costs more than the
// proxying (measured in bench/).
var buffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// Root is the decoded path prefix every forwarded request stays under.
func (p *Proxy) Root() string { return p.root }

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(ctxKey{}).(*call)
	out := pr.Out
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.URL.User = nil
	out.URL.Fragment = ""
	out.URL.RawPath = p.root + c.path
	out.URL.Path, _ = url.PathUnescape(out.URL.RawPath)
	out.Host = p.target.Host
	for _, h := range Strip {
		out.Header.Del(h)
	}
	for k := range out.Header {
		if strings.HasPrefix(k, "X-Forwarded-") {
			out.Header.Del(k)
		}
	}
	for k, v := range c.header {
		out.Header[k] = v
	}
}

// Forward sends r to root+suffix on the provider with header set on the
// outgoing request. suffix must come from Clean. Transport failures are
// answered (502/504 JSON) and logged here; the error returned is for a
// request refused before anything was sent.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, suffix string, header http.Header) error {
	if !Within(p.root, p.root+suffix) {
		return provider.Errorf(http.StatusBadRequest, "path is not allowed")
	}
	if r.Header.Get("Upgrade") != "" {
		// A tunnel with the session token attached would outlive every check.
		return provider.Errorf(http.StatusBadRequest, "protocol upgrades are not proxied")
	}
	// The provider's answer sets Cache-Control (ModifyResponse); one set
	// by the caller would be sent twice.
	w.Header().Del("Cache-Control")
	ctx := context.WithValue(r.Context(), ctxKey{}, &call{path: suffix, header: header})
	p.rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}
