package caddymodule

// The passthrough routes a provider declares with provider.Forward: the
// core checks the path once, finds the token, strips the browser's
// credentials and gives the provider's proxy the cleaned suffix.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-idv/caddy-idv/caddymodule/passthrough"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// forwardRoute gives a declared passthrough route its core handler and adds
// its token header to the route's browser and credential headers.
func (h *Handler) forwardRoute(rt *provider.Route) error {
	fw := rt.Forward
	if rt.Kind != provider.Passthrough || rt.Handle != nil || fw.Proxy == nil || fw.Credential == nil || len(fw.Rules) == 0 {
		return fmt.Errorf("idv: route %s declares a Forward: it must be a Passthrough route with no Handle, a Proxy, a Credential and at least one rule", rt.Path)
	}
	for _, pr := range fw.Rules {
		if err := pr.Check(); err != nil {
			return fmt.Errorf("idv: route %s: %w", rt.Path, err)
		}
	}
	if fw.TokenHeader != "" {
		rt.ClientHeaders = append(rt.ClientHeaders, fw.TokenHeader)
		rt.CredentialHeaders = append(rt.CredentialHeaders, fw.TokenHeader)
	}
	rt.Handle = func(w http.ResponseWriter, r *http.Request) error { return h.forward(w, r, fw) }
	return nil
}

func (h *Handler) forward(w http.ResponseWriter, r *http.Request, fw *provider.Forward) error {
	suffix, err := passthrough.Clean(provider.Suffix(r))
	if err != nil {
		return provider.Errorf(http.StatusBadRequest, "path is not allowed")
	}
	if err := provider.Allowed(fw.Rules, r.Method, suffix); err != nil {
		return err
	}
	// The query goes to the provider as it came: it must read the same
	// there as here (no ';' pairs hiding a session parameter), and never
	// override the method the rules judged.
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	for k := range q {
		switch strings.ToLower(k) {
		case "_method", "x-http-method-override", "x-http-method", "x-method-override":
			return provider.Errorf(http.StatusBadRequest, "query parameter %s is not forwarded: method overrides are refused", k)
		}
	}
	tok := ""
	if fw.TokenHeader != "" {
		tok = r.Header.Get(fw.TokenHeader)
	}
	switch {
	case tok != "":
	case fw.SessionParam != "" && q.Has(fw.SessionParam):
		s, err := h.store.Load(r.Context(), q.Get(fw.SessionParam))
		switch {
		case errors.Is(err, session.ErrMalformedID), errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired):
		case err != nil:
			return err
		case s.Provider == h.name:
			tok = s.Token
		}
	default:
		if s := h.sessionFromCookie(r); s != nil && s.Provider == h.name {
			tok = s.Token
		}
	}
	if tok == "" {
		msg := fw.NoSession
		if msg == "" {
			msg = "no live session: call " + h.Prefix + "/start first"
		}
		return provider.Errorf(http.StatusUnauthorized, "%s", msg)
	}
	if fw.SessionParam != "" && r.URL.RawQuery != "" {
		// The session's id is ours: it never reaches the provider.
		u := *r.URL
		u.RawQuery = withoutParam(u.RawQuery, fw.SessionParam)
		r.URL = &u
	}
	for _, name := range fw.Strip {
		r.Header.Del(name)
	}
	// Every route's credential headers, this one's token header included:
	// none is the provider's business.
	for _, name := range h.credHeaders {
		r.Header.Del(name)
	}
	return fw.Proxy.Forward(w, r, suffix, fw.Credential(tok))
}

// withoutParam removes every name=... pair from a raw query, leaving the
// others exactly as they came.
func withoutParam(raw, name string) string {
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, part := range parts {
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); part == "" || (err == nil && dk == name) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}
