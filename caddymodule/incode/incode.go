// Package incode is the Incode (Omni API) provider of the idv handler and
// its sandbox emulator.
package incode

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/passthrough"
	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/suggest"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Incode{})
	caddy.RegisterModule(Emulator{})
}

// DefaultAPIURL is Incode's demo environment.
const DefaultAPIURL = "https://demo-api.incodesmile.com"

// Incode is the Incode provider (module ID idv.providers.incode).
type Incode struct {
	// APIURL is Incode's API base URL. Default: https://demo-api.incodesmile.com.
	APIURL string `json:"api_url,omitempty"`
	// APIKey is the secret API key, sent only on /omni/start and on calls
	// made with the executive token. Use {env.INCODE_API_KEY}.
	APIKey string `json:"api_key,omitempty"`
	// APIVersion is sent as the api-version header. Default: 1.0.
	APIVersion string `json:"api_version,omitempty"`
	// FlowID is the flow (configurationId) sessions are started with.
	FlowID string `json:"flow_id,omitempty"`
	// ClientID is the client id used to ask for onboarding URLs.
	ClientID string `json:"client_id,omitempty"`
	// AdminEmail and AdminPassword log in an executive user to get the
	// executive token for scores, statuses, approvals and face login.
	AdminEmail    string `json:"admin_email,omitempty"`
	AdminPassword string `json:"admin_password,omitempty"`
	// AdminToken is a static executive token, used instead of a login.
	AdminToken string `json:"admin_token,omitempty"`
	// ExposeExecutiveToken serves GET <prefix>/executive-token. Off by
	// default: the executive token reads every interview of the account.
	ExposeExecutiveToken bool `json:"expose_executive_token,omitempty"`

	// resolved at provision
	key, flow, client, email, password, static, version string

	base  *url.URL
	host  *provider.Host
	up    *upstream.Client
	proxy *passthrough.Proxy
}

// CaddyModule returns the Caddy module information.
func (Incode) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.incode", New: func() caddy.Module { return new(Incode) }}
}

// UnmarshalCaddyfile parses the incode block. Syntax:
//
//	incode {
//		api_url        <url>        # default https://demo-api.incodesmile.com
//		api_key        <key>
//		api_version    <version>    # default 1.0
//		flow_id        <id>
//		client_id      <id>
//		admin_email    <email>      # optional: executive login
//		admin_password <password>   # optional
//		admin_token    <token>      # optional: a static executive token instead
//		expose_executive_token      # optional flag
//	}
func (p *Incode) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "incode"
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt == "expose_executive_token" {
			if d.NextArg() {
				return d.ArgErr()
			}
			p.ExposeExecutiveToken = true
			continue
		}
		fields := map[string]*string{
			"api_url": &p.APIURL, "api_key": &p.APIKey, "api_version": &p.APIVersion,
			"flow_id": &p.FlowID, "client_id": &p.ClientID, "admin_email": &p.AdminEmail,
			"admin_password": &p.AdminPassword, "admin_token": &p.AdminToken,
		}
		f, ok := fields[opt]
		if !ok {
			return d.Err(suggest.Unknown("incode", opt, append(slices.Collect(maps.Keys(fields)), "expose_executive_token")))
		}
		if !d.NextArg() {
			return d.Errf("incode: %s needs a value", opt)
		}
		*f = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.INCODE_API_KEY} are replaced here, so secrets stay out of the JSON
// config) and checks it.
func (p *Incode) ProvisionIDV(ctx caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	apiURL := r(p.APIURL)
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	base, err := provider.ParseBaseURL("api_url", apiURL)
	if err != nil {
		return err
	}
	p.key, p.flow, p.client = r(p.APIKey), r(p.FlowID), r(p.ClientID)
	p.email, p.password, p.static = r(p.AdminEmail), r(p.AdminPassword), r(p.AdminToken)
	p.version = r(p.APIVersion)
	if p.version == "" {
		p.version = "1.0"
	}
	var missing placeholder.Missing // all reported at once, with their variables
	missing.Check("api_key", p.APIKey, p.key)
	missing.Check("flow_id", p.FlowID, p.flow)
	missing.Check("client_id", p.ClientID, p.client)
	if err := missing.Err(); err != nil {
		return err
	}
	switch {
	case (p.email == "") != (p.password == ""):
		return errors.New("admin_email and admin_password go together")
	case p.email != "" && p.static != "":
		return errors.New("give admin_email/admin_password or admin_token, not both")
	case p.ExposeExecutiveToken && p.email == "" && p.static == "":
		return errors.New("expose_executive_token needs admin_email/admin_password or admin_token")
	}
	p.host = h
	p.up = &upstream.Client{Base: base, HTTP: h.HTTP, Timeout: h.Timeout, Retries: 1,
		Logger: h.Logger, Provider: "incode", Observe: h.Observe}
	p.proxy = passthrough.New(base, "/0/omni/", h.Transport, h.Logger)
	p.base = base
	return nil
}

// Identity implements provider.Identifier.
func (p *Incode) Identity() string { return p.base.String() + "|" + p.client + "|" + p.flow }

// Secrets implements provider.Provider.
func (p *Incode) Secrets() []string { return []string{p.key, p.password, p.static} }

// jwtExpiry reads the exp claim of a JWT without verifying it: the token
// came from the provider over TLS, and exp only decides when to refresh.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == "" {
		return time.Time{}, false
	}
	f, err := c.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0).UTC(), true
}

func (p *Incode) headers(sessionToken string) http.Header {
	h := http.Header{"Api-Version": {p.version}}
	if sessionToken != "" {
		h.Set("X-Incode-Hardware-Id", sessionToken)
	}
	return h
}

// Interface guards
var (
	_ provider.Identifier   = (*Incode)(nil)
	_ provider.Provider     = (*Incode)(nil)
	_ caddyfile.Unmarshaler = (*Incode)(nil)
)
