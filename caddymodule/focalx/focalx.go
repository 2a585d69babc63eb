// Package focalx is the Focalx provider of the idv handler and its sandbox
// emulator.
//
// Focalx's plugin needs a token per user, obtained by the site's backend
// from Focalx's GetToken API with credentials that must stay server-side.
// The provider serves GET <prefix>/token: it takes the signed-in user's
// e-mail from the request (by default the X-User-Email header, set by the
// site's own authentication), asks Focalx for that user's token and caches
// it per user until shortly before it expires.
package focalx

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Focalx{})
	caddy.RegisterModule(Emulator{})
}

// MinReportKey is the shortest report_key accepted.
const MinReportKey = 16

// DefaultUserEmail is where the user's e-mail is read from by default.
const DefaultUserEmail = "{http.request.header.X-User-Email}"

// Focalx is the Focalx provider (module ID idv.providers.focalx).
type Focalx struct {
	// APIURL is Focalx's base URL, given by Focalx with the credentials;
	// GetToken is called at <api_url>/GetToken. Required.
	APIURL string `json:"api_url,omitempty"`
	// ClientKey identifies the account. Focalx's API takes it both in the
	// clientKey query parameter and inside the encrypted auth header. Use
	// {env.FOCALX_CLIENT_KEY}.
	ClientKey string `json:"client_key,omitempty"`
	// ClientSecret is sent only inside the encrypted auth header. Use
	// {env.FOCALX_CLIENT_SECRET}.
	ClientSecret string `json:"client_secret,omitempty"`
	// EncryptionKey is the AES-256 key of the auth header: 32 bytes written
	// as 64 hex characters, as base64, or as the 32 characters themselves
	// (see ParseKey). Use {env.FOCALX_ENCRYPTION_KEY}.
	EncryptionKey string `json:"encryption_key,omitempty"`
	// PubKey is sent as the pubKey header. Use {env.FOCALX_PUB_KEY}.
	PubKey string `json:"pub_key,omitempty"`
	// Cipher is the AES mode of the auth header, which Focalx does not
	// publish: "cbc" (AES-256-CBC, PKCS#7, random IV first) or "gcm"
	// (random nonce first, tag last). Default: cbc.
	Cipher string `json:"cipher,omitempty"`
	// UserEmail is a placeholder resolved for each request to the
	// signed-in user's e-mail; requests where it is empty are refused with
	// 400. It must come from something the browser cannot forge, such as a
	// header set by forward_auth's copy_headers (which removes any copy the
	// client sent). The e-mail is trimmed and lower-cased, then hashed with
	// MD5 into Focalx's user_hash; it is never logged.
	// Default: {http.request.header.X-User-Email}.
	UserEmail string `json:"user_email,omitempty"`
	// UserEmailTrusted declares that user_email's source is set by
	// something in front of idv that the client cannot forge (forward_auth
	// with copy_headers, an authentication handler). Without it, a
	// user_email read from the request (a header, cookie or query) logs a
	// WARN at start: a handler cannot see the routes in front of it, so
	// this is declared, not detected.
	UserEmailTrusted bool `json:"user_email_trusted,omitempty"`
	// ReportKey is the key Focalx sends in the x-api-key query parameter of
	// its damage-report push (POST <prefix>/damage-report). Without it the
	// route answers 403. Use {env.FOCALX_REPORT_KEY}.
	ReportKey string `json:"report_key,omitempty"`

	// resolved at provision
	clientKey, clientSecret, pubKey, rawKey, userEmail string
	reportKey                                          string
	key                                                []byte
	mode                                               Mode
	account                                            string

	host *provider.Host
	up   *upstream.Client
}

// CaddyModule returns the Caddy module information.
func (Focalx) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.focalx", New: func() caddy.Module { return new(Focalx) }}
}

// UnmarshalCaddyfile parses the focalx block. Syntax:
//
//	focalx {
//		api_url        <url>
//		client_key     <key>
//		client_secret  <secret>
//		encryption_key <key>           # 32 bytes: 64 hex characters, base64, or the 32 characters themselves
//		pub_key        <key>
//		cipher         cbc|gcm         # default cbc
//		user_email     <placeholder>   # default {http.request.header.X-User-Email}
//		user_email_trusted             # user_email's source is set in front of idv (no start-up WARN)
//		report_key     <key>           # x-api-key of Focalx's damage-report push; none: the route answers 403
//	}
func (p *Focalx) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	str := provider.String
	return provider.ParseOptions(d, "focalx", map[string]provider.Option{
		"api_url": str(&p.APIURL), "client_key": str(&p.ClientKey), "client_secret": str(&p.ClientSecret),
		"encryption_key": str(&p.EncryptionKey), "pub_key": str(&p.PubKey), "user_email": str(&p.UserEmail),
		"report_key": str(&p.ReportKey), "user_email_trusted": provider.Flag(&p.UserEmailTrusted),
		"cipher": {Set: func(a []string) error {
			if _, err := ParseMode(a[0]); err != nil && !strings.Contains(a[0], "{") {
				return err // a placeholder is checked at provision
			}
			p.Cipher = a[0]
			return nil
		}},
	})
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.FOCALX_CLIENT_SECRET} are replaced here, so secrets stay out of the
// JSON config) and checks it. user_email is left as it is: it is resolved
// per request.
func (p *Focalx) ProvisionIDV(ctx caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	apiURL := r(p.APIURL)
	p.clientKey, p.clientSecret, p.pubKey, p.rawKey = r(p.ClientKey), r(p.ClientSecret), r(p.PubKey), r(p.EncryptionKey)
	var missing placeholder.Missing // all reported at once, with their variables
	missing.Check("api_url", p.APIURL, apiURL)
	missing.Check("client_key", p.ClientKey, p.clientKey)
	missing.Check("client_secret", p.ClientSecret, p.clientSecret)
	missing.Check("encryption_key", p.EncryptionKey, p.rawKey)
	missing.Check("pub_key", p.PubKey, p.pubKey)
	if err := missing.Err(); err != nil {
		return err
	}
	base, err := provider.ParseBaseURL("api_url", apiURL)
	if err != nil {
		return err
	}
	if p.key, err = ParseKey(p.rawKey); err != nil {
		return err
	}
	if p.mode, err = ParseMode(r(p.Cipher)); err != nil {
		return err
	}
	p.userEmail = strings.TrimSpace(p.UserEmail)
	if p.userEmail == "" {
		p.userEmail = DefaultUserEmail
	}
	if !strings.Contains(p.userEmail, "{") {
		h.Logger.Warn("focalx user_email has no placeholder: every request gets the same user's token")
	}
	if src := clientSetSource(p.userEmail); src != "" && !p.UserEmailTrusted {
		// On the sandbox (an API on this machine) there are no real users
		// to impersonate: said at INFO, so the demo starts quietly.
		logAt := h.Logger.Warn
		if ip := net.ParseIP(base.Hostname()); base.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			logAt = h.Logger.Info
		}
		logAt("focalx user_email is read from the request, which the client sets: any client can ask for any user's token "+
			"unless something in front of idv (forward_auth with copy_headers, an authentication handler) replaces it; "+
			"once it does, declare user_email_trusted",
			zap.String("user_email", p.userEmail), zap.String("source", src))
	}
	p.reportKey = r(p.ReportKey)
	if p.reportKey != "" && len(p.reportKey) < MinReportKey {
		// Shorter strings are neither guess-proof nor redacted from logs.
		return fmt.Errorf("report_key must be at least %d characters", MinReportKey)
	}
	// Tokens belong to an account and a user. The core keys the token cache
	// with this digest (Identity), credentials included: another account
	// never gets this one's tokens, and a wrong or rotated credential shows
	// at once instead of when the tokens cached with the old one expire.
	sum := sha256.Sum256([]byte(strings.Join([]string{base.String(), p.clientKey, p.clientSecret, p.pubKey, string(p.key), string(p.mode)}, "\x00")))
	p.account = hex.EncodeToString(sum[:8])
	p.host = h
	p.up = upstream.ForHost(h, "focalx", base)
	h.Logger.Debug("focalx provider ready", zap.String("cipher", string(p.mode)), zap.String("user_email", p.userEmail))
	return nil
}

// Secrets implements provider.Provider. The client key travels in a query
// string by Focalx's design, but it is a credential all the same.
func (p *Focalx) Secrets() []string {
	return []string{p.clientSecret, p.rawKey, hex.EncodeToString(p.key), base64.StdEncoding.EncodeToString(p.key), p.clientKey, p.pubKey, p.reportKey}
}

// clientSetSource names the part of the request a user_email placeholder
// reads ("header", "cookie", "query", ...), or "" when it reads something
// the client does not set directly ({http.auth.user.*}, {http.vars.*}, an
// environment variable).
func clientSetSource(v string) string {
	for _, src := range []struct{ prefix, name string }{
		{"{http.request.header.", "header"}, {"{http.request.cookie.", "cookie"},
		{"{http.request.uri", "query or path"}, {"{http.request.body", "body"},
		{"{http.request.host", "host"}, {"{http.request.orig_uri", "query or path"},
	} {
		if strings.Contains(v, src.prefix) {
			return src.name
		}
	}
	return ""
}

// Identity implements provider.Identifier: a digest of the base URL and the
// credentials (Focalx stores no sessions, so a rotation loses nothing).
func (p *Focalx) Identity() string { return p.account }

// Interface guards
var (
	_ provider.Identifier        = (*Focalx)(nil)
	_ provider.Provider          = (*Focalx)(nil)
	_ provider.UserTokener       = (*Focalx)(nil)
	_ provider.UserTokenAnswerer = (*Focalx)(nil)
	_ caddyfile.Unmarshaler      = (*Focalx)(nil)
)
