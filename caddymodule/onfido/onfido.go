// Package onfido is the Onfido (Entrust Identity Verification) provider of
// the idv handler and its sandbox emulator, written on the provider kit
// (provider/kit.go): the core serves the start, token, webhook and session
// routes; this package only talks to Onfido's API.
//
// A session is an Onfido Studio workflow run: POST /v3.6/applicants, then
// POST /v3.6/workflow_runs (and POST /v3.6/sdk_token when the run carries no
// sdk_token), all with Authorization: Token token=<api_token>. The browser
// gets the SDK token, the run's id and its hosted link. Webhooks are
// authenticated by X-SHA2-Signature, the hex HMAC-SHA256 of the raw body with
// the webhook token; the outcome is also read with GET
// /v3.6/workflow_runs/{id}. See docs/providers/onfido.md for the provenance
// of each call.
package onfido

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
	caddy.RegisterModule(Onfido{})
	caddy.RegisterModule(Emulator{})
}

// Name is the provider's name in sessions, logs and sandbox counters.
const Name = "onfido"

// DefaultAPIURL is Onfido's EU region (the default region); the US and
// Canada regions are https://api.us.onfido.com and https://api.ca.onfido.com.
const DefaultAPIURL = "https://api.eu.onfido.com"

// APIVersion is the version path every call starts with.
const APIVersion = "/v3.6"

// DefaultSDKTokenTTL is the lifetime of an SDK token ("a fixed expiry of 90
// minutes"), used when the token does not carry its own exp claim.
const DefaultSDKTokenTTL = 90 * time.Minute

// Onfido is the Onfido provider (module ID idv.providers.onfido).
type Onfido struct {
	// APIURL is the region's base URL, without /v3.6. Default:
	// https://api.eu.onfido.com.
	APIURL string `json:"api_url,omitempty"`
	// APIToken is sent as Authorization: Token token=<api_token>. Use
	// {env.ONFIDO_API_TOKEN}.
	APIToken string `json:"api_token,omitempty"`
	// WorkflowID is the Studio workflow every run uses. Use
	// {env.ONFIDO_WORKFLOW_ID}.
	WorkflowID string `json:"workflow_id,omitempty"`
	// WebhookTokens verify X-SHA2-Signature (any of them: several during a
	// rotation). Without one, webhooks answer 403. Use
	// {env.ONFIDO_WEBHOOK_TOKEN}.
	WebhookTokens []string `json:"webhook_tokens,omitempty"`
	// Referrer is the URL pattern of the page that loads the Web SDK, sent
	// with POST /sdk_token. Default: the site's origin followed by /*.
	Referrer string `json:"referrer,omitempty"`
	// SDKTokenTTL is how long an SDK token is cached when it carries no
	// exp claim (UNCONFIRMED for run tokens). Default 90m.
	SDKTokenTTL caddy.Duration `json:"sdk_token_ttl,omitempty"`

	// resolved at provision
	base       string
	token      string
	workflowID string
	hooks      [][]byte
	referrer   string
	ttl        time.Duration

	host *provider.Host
	up   *upstream.Client
}

// CaddyModule returns the Caddy module information.
func (Onfido) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.onfido", New: func() caddy.Module { return new(Onfido) }}
}

// UnmarshalCaddyfile parses the onfido block. Syntax:
//
//	onfido {
//		api_url       <url>      # default https://api.eu.onfido.com; api.us / api.ca
//		api_token     <token>    # Authorization: Token token=...; use {env.ONFIDO_API_TOKEN}
//		workflow_id   <uuid>     # the Studio workflow; use {env.ONFIDO_WORKFLOW_ID}
//		webhook_token <token>    # verifies X-SHA2-Signature; repeatable (rotation)
//		referrer      <pattern>  # POST /sdk_token; default: the site's origin + /*
//		sdk_token_ttl <duration> # default 90m, when a token has no exp
//	}
func (p *Onfido) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, Name, map[string]provider.Option{
		"api_url":       provider.String(&p.APIURL),
		"api_token":     provider.String(&p.APIToken),
		"workflow_id":   provider.String(&p.WorkflowID),
		"webhook_token": provider.Strings(&p.WebhookTokens),
		"referrer":      provider.String(&p.Referrer),
		"sdk_token_ttl": provider.Duration(&p.SDKTokenTTL),
	})
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.ONFIDO_API_TOKEN} are replaced here, so secrets stay out of the JSON
// config) and checks it.
func (p *Onfido) ProvisionIDV(_ caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	p.token, p.workflowID, p.referrer = r(p.APIToken), r(p.WorkflowID), r(p.Referrer)
	p.hooks = provider.ResolveSecrets(p.WebhookTokens)
	p.ttl = time.Duration(p.SDKTokenTTL)
	if p.ttl <= 0 {
		p.ttl = DefaultSDKTokenTTL
	}
	if p.token == "" {
		return errors.New("api_token is required")
	}
	if !idRe.MatchString(p.workflowID) {
		return errors.New("workflow_id is required: the id of the Studio workflow (a UUID)")
	}
	if p.referrer != "" && (len(p.referrer) > 512 || strings.ContainsAny(p.referrer, " \t\r\n")) {
		return errors.New("referrer must be a URL pattern such as https://app.example.com/*")
	}
	base, err := provider.APIBase(p.APIURL, DefaultAPIURL, APIVersion)
	if err != nil {
		return err
	}
	p.base = base.String()
	p.host = h
	p.up = upstream.ForHost(h, Name, base)
	return nil
}

// Secrets implements provider.Provider.
func (p *Onfido) Secrets() []string {
	return provider.SecretList(p.hooks, p.token)
}

// Identity implements provider.Identifier: the region and a digest of the
// API token (the account). The workflow is not part of it: moving to a new
// workflow version keeps the sessions already started.
func (p *Onfido) Identity() string {
	return provider.AccountID(p.base, "onfido account", p.token)
}

// Interface guards
var (
	_ provider.Provider        = (*Onfido)(nil)
	_ provider.Identifier      = (*Onfido)(nil)
	_ provider.Starter         = (*Onfido)(nil)
	_ provider.TokenRefresher  = (*Onfido)(nil)
	_ provider.WebhookVerifier = (*Onfido)(nil)
	_ provider.WebhookParser   = (*Onfido)(nil)
	_ provider.EventRefresher  = (*Onfido)(nil)
	_ caddyfile.Unmarshaler    = (*Onfido)(nil)
)
