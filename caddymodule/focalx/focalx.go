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
	"maps"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/suggest"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Focalx{})
	caddy.RegisterModule(Emulator{})
}

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
	// as 64 hex characters or as base64. Use {env.FOCALX_ENCRYPTION_KEY}.
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

	// resolved at provision
	clientKey, clientSecret, pubKey, rawKey, userEmail string
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
//		encryption_key <key>           # 32 bytes: 64 hex characters or base64
//		pub_key        <key>
//		cipher         cbc|gcm         # default cbc
//		user_email     <placeholder>   # default {http.request.header.X-User-Email}
//	}
func (p *Focalx) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "focalx"
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		fields := map[string]*string{
			"api_url": &p.APIURL, "client_key": &p.ClientKey, "client_secret": &p.ClientSecret,
			"encryption_key": &p.EncryptionKey, "pub_key": &p.PubKey, "cipher": &p.Cipher, "user_email": &p.UserEmail,
		}
		f, ok := fields[opt]
		if !ok {
			return d.Err(suggest.Unknown("focalx", opt, slices.Collect(maps.Keys(fields))))
		}
		if !d.NextArg() {
			return d.Errf("focalx: %s needs a value", opt)
		}
		*f = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		if opt == "cipher" {
			if _, err := ParseMode(p.Cipher); err != nil && !strings.Contains(p.Cipher, "{") {
				return d.Errf("focalx: %v", err)
			}
		}
	}
	return nil
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
	// Tokens belong to an account and a user. The cache is shared by
	// handlers with the same prefix and survives reloads, so its keys name
	// the account and its credentials too: another account never gets this
	// one's tokens, and a wrong or rotated credential shows at once instead
	// of when the tokens cached with the old one expire.
	sum := sha256.Sum256([]byte(strings.Join([]string{base.String(), p.clientKey, p.clientSecret, p.pubKey, string(p.key), string(p.mode)}, "\x00")))
	p.account = hex.EncodeToString(sum[:8])
	p.host = h
	p.up = &upstream.Client{Base: base, HTTP: h.HTTP, Timeout: h.Timeout, Retries: 1,
		Logger: h.Logger, Provider: "focalx", Observe: h.Observe}
	h.Logger.Debug("focalx provider ready", zap.String("cipher", string(p.mode)), zap.String("user_email", p.userEmail))
	return nil
}

// Secrets implements provider.Provider. The client key travels in a query
// string by Focalx's design, but it is a credential all the same.
func (p *Focalx) Secrets() []string {
	return []string{p.clientSecret, p.rawKey, hex.EncodeToString(p.key), base64.StdEncoding.EncodeToString(p.key), p.clientKey, p.pubKey}
}

// Interface guards
// Identity implements provider.Identifier: a digest of the base URL and the
// credentials (Focalx stores no sessions, so a rotation loses nothing).
func (p *Focalx) Identity() string { return p.account }

var (
	_ provider.Identifier   = (*Focalx)(nil)
	_ provider.Provider     = (*Focalx)(nil)
	_ caddyfile.Unmarshaler = (*Focalx)(nil)
)
