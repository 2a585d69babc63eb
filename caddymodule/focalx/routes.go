package focalx

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// DefaultLifetime is the lifetime Focalx documents for a token, assumed when
// its expiry_time cannot be read.
const DefaultLifetime = 2 * time.Hour

// Routes implements provider.Provider.
func (p *Focalx) Routes() []provider.Route {
	return []provider.Route{
		// Served by the core (cache per user, quota per fetch, cross-site
		// refused: each token is issued, and possibly billed, by Focalx).
		{Path: "/token", Kind: provider.UserToken, CredentialHeaders: []string{"Auth", "Pubkey"}},
		// Called by Focalx's servers, authenticated by its own key (in the
		// query, so not by webhook_auth): see serveDamageReport. Any method
		// reaches the handler, which answers 405 itself, so that every
		// request to the route leaves Caddy's access log (and its key).
		{Path: "/damage-report", Kind: provider.TokenServer, Handle: p.serveDamageReport},
	}
}

// UserHash is Focalx's user_hash of an e-mail: the MD5 hex digest of the
// address trimmed of spaces and lower-cased, so "Ann@Example.com " and
// "ann@example.com" are one user.
func UserHash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// TokenUser implements provider.UserTokener: the user_hash of the e-mail
// user_email resolves to for r.
func (p *Focalx) TokenUser(r *http.Request) (string, error) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	email := strings.TrimSpace(repl.ReplaceAll(p.userEmail, ""))
	if email == "" {
		return "", provider.Errorf(http.StatusBadRequest, "the user's e-mail is missing (user_email %s is empty for this request)", p.userEmail)
	}
	if len(email) > 254 { // the longest address SMTP allows
		return "", provider.Errorf(http.StatusBadRequest, "the user's e-mail is longer than 254 characters")
	}
	if strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", provider.Errorf(http.StatusBadRequest, "the user's e-mail contains spaces or control characters")
	}
	return UserHash(email), nil
}

// UserTokenAnswer implements provider.UserTokenAnswerer: expiry_time, the
// lifetime left as Focalx writes it, so a cached answer tells the remaining
// lifetime rather than the one first announced.
func (p *Focalx) UserTokenAnswer(expiresAt time.Time, answer map[string]any) {
	answer["expiry_time"] = FormatTimedelta(max(expiresAt.Sub(p.host.Now()).Round(time.Second), 0))
}

// authPayload is the JSON sealed into the auth header, in the documented
// field order.
type authPayload struct {
	ClientKey    string `json:"client_key"`
	ClientSecret string `json:"client_secret"`
	UserHash     string `json:"user_hash"`
}

// UserToken implements provider.UserTokener: Focalx's GetToken for the
// user with hash.
func (p *Focalx) UserToken(ctx context.Context, hash string) (string, time.Time, error) {
	plain, err := json.Marshal(authPayload{ClientKey: p.clientKey, ClientSecret: p.clientSecret, UserHash: hash})
	if err != nil {
		return "", time.Time{}, err
	}
	auth, err := Seal(p.mode, p.key, plain)
	if err != nil {
		return "", time.Time{}, err
	}
	// The header names are written as Focalx documents them (the map
	// literal keeps them uncanonicalised on HTTP/1.1).
	hdr := http.Header{"auth": {auth}, "pubKey": {p.pubKey}}
	var out struct {
		Token      string          `json:"token"`
		ExpiryTime json.RawMessage `json:"expiry_time"`
	}
	// GET, and a token more is harmless: a failed call may be retried.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "GetToken", Method: http.MethodGet, Path: "/GetToken",
		Query: url.Values{"clientKey": {p.clientKey}}, Header: hdr, Idempotent: true,
		LogFields: []zap.Field{zap.String("user", session.LogID(hash))}}, &out); err != nil {
		return "", time.Time{}, clientError(err)
	}
	if out.Token == "" {
		return "", time.Time{}, upstream.ErrMalformed
	}
	// Not given to Host.Redact: that registry is process-wide and never
	// shrinks, and there is a token per user. Focalx tokens are JWTs, which
	// the redactor removes by their shape.
	var expiry string
	var life time.Duration
	ok := false
	if json.Unmarshal(out.ExpiryTime, &expiry) == nil {
		life, ok = ParseTimedelta(expiry)
	}
	if !ok {
		life = DefaultLifetime
		p.host.Logger.Warn("focalx expiry_time not understood; assuming the documented 2 hours",
			zap.String("user", session.LogID(hash)), zap.String("expiry_time", truncate(string(out.ExpiryTime), 64)))
	}
	return out.Token, p.host.Now().Add(life), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// clientError maps a GetToken failure to what the browser is told. Focalx
// says which credential it refused by the status: the site's operator needs
// to know which one to fix.
func clientError(err error) error {
	msg := map[int]string{
		http.StatusUnauthorized:    "Focalx rejected the client key (401): check client_key, encryption_key and cipher",
		http.StatusPaymentRequired: "Focalx rejected the client secret (402): check client_secret",
		http.StatusForbidden:       "Focalx rejected the public key (403): check pub_key",
	}[upstream.Status(err)]
	if msg != "" {
		return &provider.Error{Status: http.StatusBadGateway, Msg: msg, Err: err}
	}
	pe := upstream.ClientError(err)
	// A *url.Error's text holds the request URL, whose query holds the
	// client key: keep only its cause for the logs. (The core's redactor
	// also removes the client key, registered by Secrets; this does not
	// depend on it.)
	var ue *url.Error
	if errors.As(pe.Err, &ue) {
		cp := *pe
		cp.Err = ue.Err
		return &cp
	}
	return pe
}
