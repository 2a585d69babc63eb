// Package incode is the Incode (Omni API) provider of the idv handler and
// its sandbox emulator.
package incode

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/passthrough"
	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
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
	// ClientID is the client id used to ask for onboarding URLs. Optional:
	// without it, the clientId /omni/start answers with is used (as Incode's
	// Node sample does, which has no client id setting).
	ClientID string `json:"client_id,omitempty"`
	// Language and CountryCode are sent to /omni/start. Defaults: en-US and
	// ALL, as in Incode's samples. A request may ask for another language
	// with ?language=<tag>.
	Language    string `json:"language,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	// AllowCustomFields passes a JSON object given as ?customFields= on
	// start routes to /omni/start's customFields. Off by default: the
	// browser chooses their content.
	AllowCustomFields bool `json:"allow_custom_fields,omitempty"`
	// WarnResult is the result of a WARN overall score: review (default),
	// verified or failed.
	WarnResult string `json:"warn_result,omitempty"`
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
	language, country                                   string

	// relogin limits executive logins caused by provider 401s.
	relogin *relogin

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
//		client_id      <id>         # optional: default from /omni/start's clientId
//		admin_email    <email>      # optional: executive login
//		admin_password <password>   # optional
//		admin_token    <token>      # optional: a static executive token instead
//		expose_executive_token      # optional flag
//		language       <tag>        # default en-US
//		country_code   <code>       # default ALL
//		allow_custom_fields         # optional flag
//		warn_result    verified|failed|review   # default review
//	}
func (p *Incode) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, "incode", map[string]provider.Option{
		"api_url": provider.String(&p.APIURL), "api_key": provider.String(&p.APIKey), "api_version": provider.String(&p.APIVersion),
		"flow_id": provider.String(&p.FlowID), "client_id": provider.String(&p.ClientID),
		"admin_email": provider.String(&p.AdminEmail), "admin_password": provider.String(&p.AdminPassword),
		"admin_token": provider.String(&p.AdminToken), "language": provider.String(&p.Language),
		"country_code": provider.String(&p.CountryCode), "warn_result": provider.String(&p.WarnResult),
		"expose_executive_token": provider.Flag(&p.ExposeExecutiveToken), "allow_custom_fields": provider.Flag(&p.AllowCustomFields),
	})
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
	p.language, p.country = r(p.Language), r(p.CountryCode)
	if p.language == "" {
		p.language = "en-US"
	}
	if p.country == "" {
		p.country = "ALL"
	}
	var missing placeholder.Missing // all reported at once, with their variables
	missing.Check("api_key", p.APIKey, p.key)
	missing.Check("flow_id", p.FlowID, p.flow)
	if err := missing.Err(); err != nil {
		return err
	}
	switch {
	case !languageTag.MatchString(p.language):
		return errors.New("language must be a language tag such as en-US")
	case !countryCode.MatchString(p.country):
		return errors.New("country_code must be ALL or a country code such as USA")
	case p.WarnResult != "" && p.WarnResult != provider.ResultVerified && p.WarnResult != provider.ResultFailed && p.WarnResult != provider.ResultReview:
		return errors.New("warn_result must be verified, failed or review")
	case (p.email == "") != (p.password == ""):
		return errors.New("admin_email and admin_password go together")
	case p.email != "" && p.static != "":
		return errors.New("give admin_email/admin_password or admin_token, not both")
	case p.ExposeExecutiveToken && p.email == "" && p.static == "":
		return errors.New("expose_executive_token needs admin_email/admin_password or admin_token")
	}
	p.host = h
	p.relogin = new(relogin)
	p.up = upstream.ForHost(h, "incode", base)
	p.proxy = passthrough.New(base, "/0/omni/", h.Transport, h.Logger)
	p.base = base
	if p.ExposeExecutiveToken {
		h.Logger.Warn("expose_executive_token is on: GET " + h.Prefix + "/executive-token hands out a token that reads every interview of the account; protect the route (forward_auth, basic_auth) or turn it off")
	}
	return nil
}

// relogin remembers the last executive login.
type relogin struct {
	sync.Mutex
	last  time.Time
	token string
}

// languageTag is a well-formed BCP 47 tag in its common shapes (en, en-US,
// es-419, zh-Hant-TW); countryCode is ALL or an ISO 3166 code.
var (
	languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$`)
	countryCode = regexp.MustCompile(`^(ALL|[A-Z]{2,3})$`)
)

// Identity implements provider.Identifier.
func (p *Incode) Identity() string { return p.base.String() + "|" + p.client + "|" + p.flow }

// Secrets implements provider.Provider.
func (p *Incode) Secrets() []string { return []string{p.key, p.password, p.static} }

// jwtExpiry reads the exp claim of a JWT without verifying it: the token
// came from the provider over TLS, and exp only decides when to refresh.
func jwtExpiry(tok string) (time.Time, bool) { return provider.JWTExpiry(tok) }

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
