// Package sumsub is the Sumsub (Sum&Substance) provider of the idv handler
// and its sandbox emulator, written on the provider kit (provider/kit.go):
// the core serves the start, token, webhook and session routes; this
// package only talks to Sumsub's API.
//
// A session mints a WebSDK access token with POST
// /resources/accessTokens/sdk for a stable userId (the applicant's
// externalUserId). Every API call is signed: X-App-Token, X-App-Access-Ts
// and X-App-Access-Sig, the hex HMAC-SHA256 of ts + METHOD + path?query +
// body with the secret key. Webhooks are authenticated by X-Payload-Digest,
// the hex HMAC of the raw body with the webhook's own secret, in the
// algorithm X-Payload-Digest-Alg names. The decision is also read with GET
// /resources/applicants/-;externalUserId={userId}/one. See
// docs/providers/sumsub.md for the provenance of each call.
package sumsub

import (
	"errors"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Sumsub{})
	caddy.RegisterModule(Emulator{})
}

// Name is the provider's name in sessions, logs and sandbox counters.
const Name = "sumsub"

// DefaultAPIURL is Sumsub's base URL for sandbox and production alike (the
// app token decides the environment). Local Data Processing customers use a
// regional domain, hence api_url.
const DefaultAPIURL = "https://api.sumsub.com"

// DefaultTokenTTL is the lifetime asked for access tokens (ttlInSecs).
const DefaultTokenTTL = 10 * time.Minute

// Sumsub is the Sumsub provider (module ID idv.providers.sumsub).
type Sumsub struct {
	// APIURL is Sumsub's base URL. Default: https://api.sumsub.com.
	APIURL string `json:"api_url,omitempty"`
	// AppToken is sent as X-App-Token. Use {env.SUMSUB_APP_TOKEN}.
	AppToken string `json:"app_token,omitempty"`
	// SecretKey signs every request (X-App-Access-Sig). Use
	// {env.SUMSUB_SECRET_KEY}.
	SecretKey string `json:"secret_key,omitempty"`
	// LevelName is the verification level of the access tokens
	// (case-sensitive). Use {env.SUMSUB_LEVEL_NAME}.
	LevelName string `json:"level_name,omitempty"`
	// WebhookSecrets are the webhook's own secret keys (not the secret
	// key): X-Payload-Digest verifies against any of them (several during
	// a rotation). Without one webhooks answer 403.
	WebhookSecrets []string `json:"webhook_secrets,omitempty"`
	// TokenTTL is the access tokens' lifetime (ttlInSecs). Default 10m.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// UserID is the applicant's userId, from a trusted source such as a
	// header set by an authenticating proxy ({http.request.header.X-User-Id});
	// resolved per request. Default: the session's uniqueId.
	UserID string `json:"user_id,omitempty"`

	// resolved at provision
	base           string
	appToken       string
	secret         []byte
	level          string
	webhookSecrets [][]byte
	ttl            time.Duration
	userID         string // global placeholders resolved; request ones left

	host *provider.Host
	up   *upstream.Client
}

// CaddyModule returns the Caddy module information.
func (Sumsub) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.sumsub", New: func() caddy.Module { return new(Sumsub) }}
}

// UnmarshalCaddyfile parses the sumsub block. Syntax:
//
//	sumsub {
//		api_url        <url>      # default https://api.sumsub.com
//		app_token      <token>    # X-App-Token; use {env.SUMSUB_APP_TOKEN}
//		secret_key     <secret>   # signs every request; use {env.SUMSUB_SECRET_KEY}
//		level_name     <level>    # use {env.SUMSUB_LEVEL_NAME}
//		webhook_secret <secret>   # verifies X-Payload-Digest; repeatable (rotation)
//		token_ttl      <duration> # default 10m
//		user_id        <value>    # optional, e.g. {http.request.header.X-User-Id}
//	}
func (p *Sumsub) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, Name, map[string]provider.Option{
		"api_url":        provider.String(&p.APIURL),
		"app_token":      provider.String(&p.AppToken),
		"secret_key":     provider.String(&p.SecretKey),
		"level_name":     provider.String(&p.LevelName),
		"webhook_secret": provider.Strings(&p.WebhookSecrets),
		"token_ttl":      provider.Duration(&p.TokenTTL),
		"user_id":        provider.String(&p.UserID),
	})
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.SUMSUB_SECRET_KEY} are replaced here, so secrets stay out of the JSON
// config) and checks it.
func (p *Sumsub) ProvisionIDV(_ caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	p.appToken, p.level = r(p.AppToken), r(p.LevelName)
	p.secret, p.webhookSecrets = []byte(r(p.SecretKey)), provider.ResolveSecrets(p.WebhookSecrets)
	// {env.*} now; {http.request.*} when a session starts.
	p.userID = strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(p.UserID, ""))
	switch {
	case p.appToken == "":
		return errors.New("app_token is required")
	case len(p.secret) == 0:
		return errors.New("secret_key is required: Sumsub refuses unsigned requests")
	case p.level == "":
		return errors.New("level_name is required")
	}
	p.ttl = time.Duration(p.TokenTTL)
	if p.ttl == 0 {
		p.ttl = DefaultTokenTTL
	}
	if p.ttl < time.Second {
		return errors.New("token_ttl must be at least 1s (ttlInSecs is whole seconds)")
	}
	base, err := provider.APIBase(p.APIURL, DefaultAPIURL, "")
	if err != nil {
		return err
	}
	p.base = base.String()
	p.host = h
	p.up = upstream.ForHost(h, Name, base)
	return nil
}

// Secrets implements provider.Provider.
func (p *Sumsub) Secrets() []string {
	return provider.SecretList(p.webhookSecrets, p.appToken, string(p.secret))
}

// Identity implements provider.Identifier: the base URL, the level and a
// digest of the app token (the account and its environment).
func (p *Sumsub) Identity() string {
	return provider.AccountID(p.base, "sumsub app", p.appToken, p.level)
}

// Interface guards
var (
	_ provider.Provider        = (*Sumsub)(nil)
	_ provider.Identifier      = (*Sumsub)(nil)
	_ provider.Starter         = (*Sumsub)(nil)
	_ provider.TokenRefresher  = (*Sumsub)(nil)
	_ provider.WebhookVerifier = (*Sumsub)(nil)
	_ provider.WebhookParser   = (*Sumsub)(nil)
	_ provider.EventRefresher  = (*Sumsub)(nil)
	_ provider.SessionOwner    = (*Sumsub)(nil)
	_ caddyfile.Unmarshaler    = (*Sumsub)(nil)
)
