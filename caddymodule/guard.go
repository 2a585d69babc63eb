package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/webhookauth"
)

// XIDV is the header a page sends with a cookie-bound passthrough call. A
// page of another site cannot send it without a CORS preflight, which only
// cors_origins pass: a cookie alone (which the browser attaches to a
// cross-site navigation or form post) never lends the session's token.
const XIDV = "X-IDV"

// PassthroughMethods are the only methods a passthrough route forwards.
var PassthroughMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// corsAllowHeaders are the request headers a listed origin may send to
// any route; a route adds its own (Route.ClientHeaders).
const corsAllowHeaders = "Content-Type, X-IDV"

// allowHeaders is the Access-Control-Allow-Headers of a preflight for rt.
func allowHeaders(rt *provider.Route) string {
	if len(rt.ClientHeaders) == 0 {
		return corsAllowHeaders
	}
	return corsAllowHeaders + ", " + strings.Join(rt.ClientHeaders, ", ")
}

// cookieAllowed reports whether the session cookie may stand for the
// request's session: always, except on a passthrough route without X-IDV: 1.
func cookieAllowed(r *http.Request) bool {
	return !provider.IsPassthrough(r) || r.Header.Get(XIDV) == "1"
}

// refusePassthrough returns a 403 for a passthrough request a browser made
// as a navigation (a link, a form post, a frame) or from another site. An
// origin listed in cors_origins may still call it with fetch (mode cors).
func (h *Handler) refusePassthrough(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "navigate", "nested-navigate":
		return provider.Errorf(http.StatusForbidden, "navigations to %s passthrough routes are not allowed", h.Prefix)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		if origin := r.Header.Get("Origin"); origin == "" || !h.cors[strings.ToLower(origin)] {
			return provider.Errorf(http.StatusForbidden, "cross-site requests to %s passthrough routes are not allowed", h.Prefix)
		}
	}
	return nil
}

// checkQuery refuses a query string that is malformed, or one whose names
// or values are not valid UTF-8 text or hold a NUL: they would otherwise be
// replaced by U+FFFD somewhere on the way and forwarded mangled.
func checkQuery(r *http.Request) error {
	_, err := parseQuery(r.URL.RawQuery)
	return err
}

// parseQuery is checkQuery returning the parsed query (nil when empty).
func parseQuery(raw string) (url.Values, error) {
	if raw == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, provider.Errorf(http.StatusBadRequest, "malformed query string")
	}
	for name, vals := range q {
		if !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
			return nil, provider.Errorf(http.StatusBadRequest, "query parameter name %q is not valid UTF-8 text", name)
		}
		for _, v := range vals {
			if !utf8.ValidString(v) {
				return nil, provider.Errorf(http.StatusBadRequest, "query parameter %s is not valid UTF-8", name)
			}
			if strings.IndexByte(v, 0) >= 0 {
				return nil, provider.Errorf(http.StatusBadRequest, "query parameter %s contains a NUL character", name)
			}
		}
	}
	return q, nil
}

// clientHTTPS reports whether the client's request was HTTPS: TLS on this
// connection, or X-Forwarded-Proto: https from a proxy the server trusts
// (trusted_proxies). The header of an untrusted peer is ignored.
func clientHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		return false
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// claimOriginal returns r with its original URL when a handler that ran
// before idv (try_files in the usual single-page-app set-up, or any rewrite)
// moved a request under the prefix elsewhere: the prefix belongs to idv.
func (h *Handler) claimOriginal(r *http.Request) (*http.Request, string, bool) {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return r, "", false
	}
	rest, ok := strings.CutPrefix(orig.URL.Path, h.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return r, "", false
	}
	u := *orig.URL
	r = r.WithContext(r.Context()) // a shallow copy: the caller's request is left as it was
	r.URL = &u
	r.RequestURI = orig.RequestURI
	return r, rest, true
}

// siteHosts are the host names of the site the handler serves: the host
// matchers on the routes that lead to it. catchAll is true when some path
// to the handler matches any host (a site address such as :8080).
type siteHosts struct {
	levels   [][][]string // per route level, per matcher set, its host names (nil: any host)
	catchAll bool
}

// hostsOf finds the handler in the server's routes, once.
func (h *Handler) hostsOf(r *http.Request) *siteHosts {
	h.st.hostsOnce.Do(func() {
		h.st.hosts = &siteHosts{catchAll: true}
		srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
		if srv == nil {
			return
		}
		if levels, ok := findHandler(srv.Routes, h, nil); ok {
			h.st.hosts = &siteHosts{levels: levels, catchAll: true}
			for _, lv := range levels {
				if !anyHost(lv) {
					h.st.hosts.catchAll = false
				}
			}
		}
	})
	return h.st.hosts
}

func anyHost(sets [][]string) bool {
	for _, s := range sets {
		if s == nil {
			return true
		}
	}
	return len(sets) == 0
}

// findHandler returns the host names of each route on the path to target.
func findHandler(routes caddyhttp.RouteList, target *Handler, path [][][]string) ([][][]string, bool) {
	for _, rt := range routes {
		var sets [][]string
		for _, ms := range rt.MatcherSets {
			var names []string
			for _, m := range ms {
				if mh, ok := m.(*caddyhttp.MatchHost); ok {
					names = append(names, *mh...)
				}
			}
			sets = append(sets, names) // nil: this set matches any host
		}
		here := append(append([][][]string(nil), path...), sets)
		for _, hd := range rt.Handlers {
			switch v := hd.(type) {
			case *Handler:
				if v == target {
					return here, true
				}
			case *caddyhttp.Subroute:
				if found, ok := findHandler(v.Routes, target, here); ok {
					return found, true
				}
			}
		}
	}
	return nil, false
}

// allows reports whether host is one the site answers to.
func (s *siteHosts) allows(host string) bool {
	if s.catchAll {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, lv := range s.levels {
		if len(lv) == 0 {
			continue
		}
		ok := false
		for _, names := range lv {
			if names == nil {
				ok = true
			}
			for _, n := range names {
				ok = ok || hostMatches(strings.ToLower(n), host)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// hostMatches is Caddy's host matching: exact, or a wildcard label standing
// for one label. Placeholders never match.
func hostMatches(pattern, host string) bool {
	if strings.Contains(pattern, "{") {
		return false
	}
	if pattern == host {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return false
	}
	pl, hl := strings.Split(pattern, "."), strings.Split(host, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
		if hl[i] == "" {
			return false
		}
	}
	return true
}

// checkProxy logs once, when the quota is on and the first request shows
// it: a request with a client-IP header (X-Forwarded-For, or the server's
// client_ip_headers) from a peer the server does not trust means the site
// sits behind a proxy Caddy does not know, so every client shares the
// proxy's address; a trusted peer without trusted_proxies_strict means the
// client IP is the leftmost X-Forwarded-For entry, which any client sets.
func (h *Handler) checkProxy(r *http.Request) {
	if h.quota == nil || h.st.proxyChecked.Load() {
		return
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return
	}
	headers := srv.ClientIPHeaders
	if len(headers) == 0 {
		headers = []string{"X-Forwarded-For"}
	}
	forwarded := false
	for _, hd := range headers {
		forwarded = forwarded || r.Header.Get(hd) != ""
	}
	if !forwarded {
		return
	}
	if !h.st.proxyChecked.CompareAndSwap(false, true) {
		return
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	switch {
	case !trusted:
		h.logger.Warn("session_quota: requests arrive through a proxy this server does not trust, so every client behind it shares one quota; "+
			"set trusted_proxies and trusted_proxies_strict in the servers global option",
			zap.Strings("client_ip_headers", headers))
	case srv.TrustedProxiesStrict == 0:
		h.logger.Warn("session_quota: trusted_proxies is set without trusted_proxies_strict, so the client IP is the leftmost X-Forwarded-For entry, " +
			"which a client chooses: set trusted_proxies_strict")
	}
}

// state is what a handler learns while serving (behind a pointer: the
// Handler is copied by value where Caddy reads its module info).
type state struct {
	hostsOnce    sync.Once
	hosts        *siteHosts
	proxyChecked atomic.Bool
}

// hideCredentials removes the webhook credential from the request once it
// is checked: nothing after the check (the provider's handler, its logs)
// sees it.
func hideCredentials(r *http.Request, wa *webhookauth.Config) {
	if wa == nil {
		return
	}
	if name := wa.HeaderName(); name != "" {
		r.Header.Del(name)
	}
	if wa.Method == webhookauth.Basic || wa.Method == webhookauth.OAuth2 {
		r.Header.Del("Authorization")
	}
}
