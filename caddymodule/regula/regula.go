// Package regula is the Regula IDV platform provider of the idv handler and
// its sandbox emulator.
//
// A session is started server-side, as Regula's "token URL" flow
// describes: the API key buys a short-lived ephemeral token
// (POST /api/device/ephemeral), the ephemeral token starts a session for a
// workflow (POST /api/sessions), and the browser gets a handoff URL that
// carries that token; or, with flow deeplink, one POST /api/v1/deeplink
// does both and answers the link. The API key never leaves the server; each
// session has its own token, kept in the session record only.
//
// It is written on the provider kit (provider/kit.go): the core serves the
// start and webhook routes; this package talks to Regula's API and forwards
// the SDK's calls.
package regula

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/passthrough"
	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

func init() {
	caddy.RegisterModule(Regula{})
	caddy.RegisterModule(Emulator{})
}

// DefaultTTL is the default lifetime of an ephemeral token and its session.
const DefaultTTL = time.Hour

// Regula is the Regula IDV provider (module ID idv.providers.regula).
type Regula struct {
	// Host is the customer's IDV platform, as scheme://host[:port] (a bare
	// host name means https). Sessions, handoff URLs and passthrough calls
	// all go there.
	Host string `json:"host,omitempty"`
	// APIKey is the secret API key. It needs Ephemeral Devices:Write for
	// the ephemeral flow or deeplink:write for the deeplink flow, and read
	// access to sessions for status refreshes. It is sent only to the start
	// call (/api/device/ephemeral or /api/v1/deeplink) and to the results
	// API. Use {env.REGULA_API_KEY}.
	APIKey string `json:"api_key,omitempty"`
	// Flow is how a session is started: "ephemeral" (default; an ephemeral
	// token, then a session with it, as in the original Token URL page) or
	// "deeplink" (one POST /api/v1/deeplink call, as the current Token URL
	// page documents).
	Flow string `json:"flow,omitempty"`
	// APIKeyScheme is put before the key in the Authorization header of the
	// start call. Default: what Regula's page shows for the flow, the key
	// alone for ephemeral and "ApiKey <key>" for deeplink; "none" sends the
	// key alone whatever the flow.
	APIKeyScheme string `json:"api_key_scheme,omitempty"`
	// ResultsKeyScheme is the same for the results API
	// (GET /api/sessions/<id>). Default: "ApiKey", as documented; "none"
	// sends the key alone.
	ResultsKeyScheme string `json:"results_key_scheme,omitempty"`
	// WorkflowID is the workflow sessions are started with.
	WorkflowID string `json:"workflow_id,omitempty"`
	// TTL is the lifetime of each ephemeral token, and so of its session
	// (capped by the handler's session_ttl). Default: 1h.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// PassthroughAllow, when set, lists the only paths below /idv/ that are
	// forwarded (patterns of provider.PathRule, e.g. "sessions/**"); calls
	// that create devices, deeplinks or sessions stay refused. Regula does
	// not publish which paths its web component calls, so the default
	// forwards every other path.
	PassthroughAllow []string `json:"passthrough_allow,omitempty"`

	// resolved at provision
	base       string // scheme://host, for handoff URLs
	key        string
	flow       string
	keyHeader  string // the Authorization value of the start call
	resultsKey string // the Authorization value of the results API
	workflow   string
	ttl        time.Duration

	host  *provider.Host
	up    *upstream.Client
	proxy *passthrough.Proxy
}

// CaddyModule returns the Caddy module information.
func (Regula) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.regula", New: func() caddy.Module { return new(Regula) }}
}

// UnmarshalCaddyfile parses the regula block. Syntax:
//
//	regula {
//		host           <scheme://host[:port]>   # the IDV platform; a bare host means https
//		api_key        <key>                    # use {env.REGULA_API_KEY}
//		flow           ephemeral|deeplink       # default ephemeral
//		api_key_scheme <scheme>|none            # start call; default: none (ephemeral), ApiKey (deeplink)
//		results_key_scheme <scheme>|none        # results API; default ApiKey
//		workflow_id    <id>
//		ttl            <duration>               # default 1h: the ephemeral token's and session's lifetime
//		passthrough_allow <pattern>...          # repeatable; default: every path but the billable ones
//	}
func (p *Regula) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return provider.ParseOptions(d, Name, map[string]provider.Option{
		"host":               provider.String(&p.Host),
		"api_key":            provider.String(&p.APIKey),
		"api_key_scheme":     provider.String(&p.APIKeyScheme),
		"results_key_scheme": provider.String(&p.ResultsKeyScheme),
		"workflow_id":        provider.String(&p.WorkflowID),
		"passthrough_allow": {Args: -1, Repeat: true, Set: func(a []string) error {
			p.PassthroughAllow = append(p.PassthroughAllow, a...)
			return nil
		}},
		"flow": {Set: func(a []string) error {
			if !strings.Contains(a[0], "{") { // a placeholder is checked at provision
				if err := checkFlow(a[0]); err != nil {
					return err
				}
			}
			p.Flow = a[0]
			return nil
		}},
		// Any duration: 0 means the default, and provision says what is too short.
		"ttl": {Set: func(a []string) error {
			dur, err := caddy.ParseDuration(a[0])
			if err == nil {
				p.TTL = caddy.Duration(dur)
			}
			return err
		}},
	})
}

// ProvisionIDV resolves the configuration (placeholders such as
// {env.REGULA_API_KEY} are replaced here, so secrets stay out of the JSON
// config) and checks it.
func (p *Regula) ProvisionIDV(ctx caddy.Context, h *provider.Host) error {
	r := provider.Resolve
	p.key, p.workflow = r(p.APIKey), r(p.WorkflowID)
	scheme, resultsScheme := r(p.APIKeyScheme), r(p.ResultsKeyScheme)
	p.flow = r(p.Flow)
	if p.flow == "" {
		p.flow = FlowEphemeral
	}
	host := r(p.Host)
	p.ttl = time.Duration(p.TTL)
	if p.ttl == 0 {
		p.ttl = DefaultTTL
	}
	var missing placeholder.Missing // all reported at once, with their variables
	missing.Check("host", p.Host, host)
	missing.Check("api_key", p.APIKey, p.key)
	missing.Check("workflow_id", p.WorkflowID, p.workflow)
	if err := missing.Err(); err != nil {
		return err
	}
	if err := checkFlow(p.flow); err != nil {
		return err
	}
	switch {
	case strings.ContainsAny(scheme, " \t\r\n"):
		return errors.New("api_key_scheme must be one word, such as ApiKey")
	case strings.ContainsAny(resultsScheme, " \t\r\n"):
		return errors.New("results_key_scheme must be one word, such as ApiKey")
	case p.ttl < time.Second:
		return errors.New("ttl must be at least 1s")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	base, err := provider.ParseBaseURL("host", host)
	if err != nil {
		return err
	}
	if base.Path != "" && base.Path != "/" {
		return errors.New("host must be scheme://host[:port], without a path")
	}
	base.Path, base.RawPath = "", ""
	p.base = base.String()
	startDefault := ""
	if p.flow == FlowDeeplink {
		startDefault = "ApiKey"
	}
	p.keyHeader = authValue(scheme, startDefault, p.key)
	p.resultsKey = authValue(resultsScheme, "ApiKey", p.key)
	p.host = h
	p.up = upstream.ForHost(h, Name, base)
	p.proxy = passthrough.New(base, "/api/", h.Transport, h.Logger)
	return nil
}

// Session-start flows.
const (
	FlowEphemeral = "ephemeral"
	FlowDeeplink  = "deeplink"
)

func checkFlow(flow string) error {
	if flow != FlowEphemeral && flow != FlowDeeplink {
		return fmt.Errorf("flow must be %s or %s, got %q", FlowEphemeral, FlowDeeplink, flow)
	}
	return nil
}

// authValue is the Authorization value that carries key with scheme: def
// when scheme is empty, the key alone when it is "none".
func authValue(scheme, def, key string) string {
	if scheme == "" {
		scheme = def
	}
	if scheme == "" || strings.EqualFold(scheme, "none") {
		return key
	}
	return scheme + " " + key
}

// Secrets implements provider.Provider.
func (p *Regula) Secrets() []string { return []string{p.key} }

// Identity implements provider.Identifier: the IDV host and the workflow.
func (p *Regula) Identity() string { return p.base + "|" + p.workflow }

// Interface guards
var (
	_ provider.Identifier      = (*Regula)(nil)
	_ provider.Provider        = (*Regula)(nil)
	_ provider.Starter         = (*Regula)(nil)
	_ provider.WebhookParser   = (*Regula)(nil)
	_ provider.WebhookEffector = (*Regula)(nil)
	_ provider.WebhookAnswerer = (*Regula)(nil)
	_ provider.EventRefresher  = (*Regula)(nil)
	_ caddyfile.Unmarshaler    = (*Regula)(nil)
)
