package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

func (h *Handler) match(rest string) *provider.Route {
	if rt, ok := h.exact[rest]; ok {
		return rt
	}
	for _, rt := range h.subtrees {
		if strings.HasPrefix(rest, rt.Path) {
			return rt
		}
	}
	return nil
}

type arrivedKey struct{}

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	// The arrival time tells BindSession whether a session was started by
	// this request or resumed.
	r = r.WithContext(context.WithValue(r.Context(), arrivedKey{}, time.Now().UTC()))
	// Every answer is one client's: no cache on the way keeps it.
	w.Header().Set("Cache-Control", "no-store")
	// Tells a page (the demo's badge) whether it talks to a sandbox on this
	// machine; a provider's address is no secret, and this says less.
	w.Header().Set("X-IDV-Sandbox", h.sandbox)
	h.checkProxy(r)
	rt := h.match(rest)
	if rt == nil {
		h.fail(w, r, provider.Errorf(http.StatusNotFound, "unknown route %s%s", h.Prefix, rest))
		return
	}
	origin := r.Header.Get("Origin")
	if origin != "" && h.cors[strings.ToLower(origin)] {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			methods := rt.Methods
			if len(methods) == 0 {
				methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
			}
			hd.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
			hd.Set("Access-Control-Allow-Headers", allowHeaders(rt))
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	methods := rt.Methods
	if len(methods) == 0 && rt.Kind == provider.Passthrough {
		methods = PassthroughMethods
	}
	if len(methods) > 0 && !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		h.fail(w, r, provider.Errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s%s", r.Method, h.Prefix, rt.Path))
		return
	}
	// attempt ends a webhook's authentication attempt: guessing the
	// credential costs one attempt per failure.
	var attempt func(failed bool)
	switch rt.Kind {
	case provider.Webhook, provider.SignedWebhook:
		wait, done := h.authLimit.begin(clientKey(r))
		if wait > 0 {
			h.fail(w, r, h.tooMany("failed webhook authentications", wait))
			return
		}
		attempt = done
		if rt.Kind == provider.Webhook {
			err := h.authenticateWebhook(r)
			attempt(err != nil)
			attempt = nil
			if err != nil {
				h.fail(w, r, err)
				return
			}
			hideCredentials(r, h.WebhookAuth)
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	case provider.TokenServer, provider.StartSession, provider.SessionToken:
		if rt.Path == "/webhook/token" { // the core's route: paths are unique
			if wait := h.authLimit.allow("token "+clientKey(r), AuthEvery*time.Duration(AuthBurst)); wait > 0 {
				h.fail(w, r, h.tooMany("webhook token requests", wait))
				return
			}
		}
		if err := checkQuery(r); err != nil {
			h.fail(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}
	// Webhooks come from providers' servers: no browser checks.
	if rt.Kind != provider.Webhook && rt.Kind != provider.SignedWebhook && (rt.CreatesSession || !safeMethod(r.Method)) && h.crossSite(r) {
		h.fail(w, r, provider.Errorf(http.StatusForbidden, "cross-site requests to %s%s are not allowed", h.Prefix, rt.Path))
		return
	}
	if rt.Kind == provider.Passthrough {
		if err := h.refusePassthrough(r); err != nil {
			h.fail(w, r, err)
			return
		}
		// The escaped form must still start with the route: an encoded
		// character inside the prefix or route part is refused.
		esc := r.URL.EscapedPath()
		suffix, ok := strings.CutPrefix(esc, h.Prefix+rt.Path)
		if !ok {
			h.fail(w, r, provider.Errorf(http.StatusBadRequest, "path is not allowed"))
			return
		}
		r = r.WithContext(provider.WithSuffix(r.Context(), suffix))
		if err := h.limitUpload(w, r); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if rt.CreatesSession {
		var err error
		if r, err = h.preloadCookieSession(r); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	err := rt.Handle(w, r)
	if attempt != nil { // a signed webhook, verified by the provider
		attempt(authFailure(err))
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

// authFailure reports whether err refused a webhook's credentials.
func authFailure(err error) bool {
	var pe *provider.Error
	return errors.As(err, &pe) && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// fail writes err as JSON and logs it; server-side causes are logged, never
// sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	pe := provider.WriteError(w, asUnavailable(err))
	fields := []zap.Field{zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", pe.Status), zap.String("error", pe.Msg)}
	if pe.Err != nil {
		fields = append(fields, zap.String("cause", redactErr(pe.Err)))
	}
	if pe.Status >= 500 {
		h.logger.Error("idv request failed", fields...)
	} else {
		h.logger.Debug("idv request refused", fields...)
	}
}

// crossSite reports whether a browser sent r from another site that is not
// listed in cors_origins.
func (h *Handler) crossSite(r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		if h.cors[strings.ToLower(origin)] {
			return false
		}
		u, err := url.Parse(origin)
		return err != nil || !strings.EqualFold(u.Host, r.Host)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}

// sameOrigin reports whether a browser says r comes from the site's own
// pages (Fetch Metadata, or an Origin naming this host).
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	return false
}

// checkRedirect allows absolute http(s) URLs on one of the origins listed
// in redirect_origins, or else on one of the site's configured host names:
// never one the request names (its Host header is the client's to choose).
// From an HTTPS client, an http URL is refused either way.
func (h *Handler) checkRedirect(r *http.Request, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return provider.Errorf(http.StatusBadRequest, "redirectionUrl must be an absolute http or https URL")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if u.Scheme == "http" && clientHTTPS(r) {
		return provider.Errorf(http.StatusBadRequest, "redirectionUrl origin %s is not allowed: an http URL from an HTTPS page", origin)
	}
	if len(h.redirects) > 0 {
		if h.redirects[origin] {
			return nil
		}
		return provider.Errorf(http.StatusBadRequest, "redirectionUrl origin %s is not allowed (see redirect_origins)", origin)
	}
	hosts := h.hostsOf(r)
	if hosts.catchAll {
		return provider.Errorf(http.StatusBadRequest, "redirectionUrl is not allowed: this site has no host name to compare it with (set redirect_origins)")
	}
	if hosts.allows(u.Hostname()) {
		return nil
	}
	return provider.Errorf(http.StatusBadRequest, "redirectionUrl origin %s is not allowed (see redirect_origins)", origin)
}

// sessionFromCookie is Host.SessionFromCookie. On a passthrough route the
// cookie counts only with X-IDV: 1 (see XIDV): the provider then finds no
// session and answers as it does for a request without one.
func (h *Handler) sessionFromCookie(r *http.Request) *session.Session {
	if !cookieAllowed(r) {
		return nil
	}
	c, err := r.Cookie(Cookie)
	if err != nil || !session.ValidID(c.Value) {
		return nil
	}
	if provider.IsPassthrough(r) {
		// The hot path of the SDK's calls: the token from memory (credcache.go).
		return h.passthroughSession(r, c.Value)
	}
	return h.loadLive(r, c.Value)
}

// loadLive loads a session by id (reusing the preload of a session-creating
// route), or nil when there is none or it cannot be read.
func (h *Handler) loadLive(r *http.Request, id string) *session.Session {
	s, err := h.loadCookieSession(r, id)
	if err != nil {
		return nil
	}
	return s
}

// bindSession sets the session cookie. A session this request started is
// always bound. A resumed one is bound only for a request from the site's
// own pages: otherwise a link to <prefix>/start?uniqueId=<attacker's id>
// would plant the attacker's session in the victim's browser, and the
// victim would then verify their identity inside it.
func (h *Handler) bindSession(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if arrived, ok := r.Context().Value(arrivedKey{}).(time.Time); ok && s.CreatedAt.Before(arrived) {
		h.count(provider.CountSessions, "resumed")
		if !sameOrigin(r) {
			return
		}
	} else {
		h.count(provider.CountSessions, "started")
	}
	path := h.Prefix
	if path == "" {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{
		Name:     Cookie,
		Value:    s.UniqueID,
		Path:     path,
		Expires:  s.ExpiresAt,
		HttpOnly: true,
		Secure:   clientHTTPS(r),
		SameSite: http.SameSiteLaxMode,
	})
}
