// Package veriff is the Veriff provider of the idv handler and its sandbox
// emulator, written on the provider kit (provider/kit.go): the core serves
// the start, webhook and session routes; this package only talks to
// Veriff's API.
//
// A session is created server-side with POST /v1/sessions (X-AUTH-CLIENT:
// the API key) and the browser gets its hosted-flow URL. Veriff's webhooks
// (decisions and events) are authenticated by X-HMAC-SIGNATURE, the hex
// HMAC-SHA256 of the raw body with the shared secret; the decision is also
// read with GET /v1/sessions/{id}/decision, signed with the HMAC of the id.
// See docs/providers/veriff.md for the provenance of each call.
package veriff

import (
	"errors"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Veriff{})
	caddy.RegisterModule(Emulator{})
}

// Name is the provider's name in sessions, logs and sandbox counters.
const Name = "veriff"

// DefaultAPIURL is Veriff's usual production base URL; each integration's
// own is shown in Veriff's Customer Portal.
const DefaultAPIURL = "https://stationapi.veriff.com"

// Veriff is the Veriff provider (module ID idv.providers.veriff).
type Veriff struct {
	// APIURL is the integration's base URL, without /v1. Default:
	// https://stationapi.veriff.com.
	APIURL string `json:"api_url,omitempty"`
	// APIKey is the integration's API key, sent as X-AUTH-CLIENT. Use
	// {env.VERIFF_API_KEY}.
	APIKey string `json:"api_key,omitempty"`
	// SharedSecrets are the integration's shared secret keys: the first
	// signs decision reads, any of them verifies a webhook (several during
	// a rotation). Without one, webhooks answer 403 and the decision is
	// not read. Use {env.VERIFF_SHARED_SECRET}.
	SharedSecrets []string `json:"shared_secrets,omitempty"`
	// CallbackURL is where Veriff sends the user after the flow
	// (verification.callback); it must be https. Optional.
	CallbackURL string `json:"callback_url,omitempty"`

	// resolved at provision
	base     string
	key      string
	secrets  [][]byte
	callback string

	host *provider.Host
	up   *upstream.Client
}

// CaddyModule returns the Caddy module information.
func (Veriff) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.veriff", New: func() caddy.Module { return new(Veriff) }}
}

// UnmarshalCaddyfile parses the veriff block. Syntax:
//
//	veriff {
//		api_url       <url>      # default https://stationapi.veriff.com
//		api_key       <key>      # X-AUTH-CLIENT; use {env.VERIFF_API_KEY}
//		shared_secret <secret>   # repeatable (rotation); use {env.VERIFF_SHARED_SECRET}
//		callback_url  <https url> # optional: verification.callback
//	}
func (p *Veriff) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, Name, map[string]provider.Option{
		"api_url":       provider.String(&p.APIURL),
		"api_key":       provider.String(&p.APIKey),
		"shared_secret": provider.Strings(&p.SharedSecrets),
		"callback_url":  provider.String(&p.CallbackURL),
	})
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.VERIFF_API_KEY} are replaced here, so secrets stay out of the JSON
// config) and checks it.
func (p *Veriff) ProvisionIDV(_ caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	p.key, p.callback = r(p.APIKey), r(p.CallbackURL)
	p.secrets = provider.ResolveSecrets(p.SharedSecrets)
	if p.key == "" {
		return errors.New("api_key is required")
	}
	base, err := provider.APIBase(p.APIURL, DefaultAPIURL, "/v1")
	if err != nil {
		return err
	}
	if p.callback != "" {
		u, err := url.Parse(p.callback)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return errors.New("callback_url must be an https URL (Veriff refuses other callbacks, error 1302)")
		}
	}
	p.base = base.String()
	p.host = h
	p.up = upstream.ForHost(h, Name, base)
	return nil
}

// Secrets implements provider.Provider.
func (p *Veriff) Secrets() []string {
	return provider.SecretList(p.secrets, p.key)
}

// Identity implements provider.Identifier: the base URL and a digest of the
// API key (the integration).
func (p *Veriff) Identity() string {
	return provider.AccountID(p.base, "veriff integration", p.key)
}

// Interface guards
var (
	_ provider.Provider        = (*Veriff)(nil)
	_ provider.Identifier      = (*Veriff)(nil)
	_ provider.Starter         = (*Veriff)(nil)
	_ provider.WebhookVerifier = (*Veriff)(nil)
	_ provider.WebhookParser   = (*Veriff)(nil)
	_ provider.EventRefresher  = (*Veriff)(nil)
	_ caddyfile.Unmarshaler    = (*Veriff)(nil)
)
