package caddymodule

import (
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-idv/caddy-idv/caddymodule/suggest"
	"github.com/caddy-idv/caddy-idv/caddymodule/webhookauth"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("idv", parseCaddyfile)
	// Before handle (and so before route, respond, reverse_proxy and
	// file_server): the prefix is answered whatever else the site does,
	// while basic_auth, forward_auth, request_header and encode still run
	// first. No order option or route wrapper is needed. rewrite, uri and
	// try_files run earlier still: the handler claims a request whose
	// original path is under its prefix even if one of them moved it (the
	// usual single-page-app try_files {path} /index.html). See
	// docs/configuration.md, "Directive order".
	httpcaddyfile.RegisterDirectiveOrder("idv", httpcaddyfile.Before, "handle")
}

// parseCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	idv {
//		prefix      /api                 # default /api
//		<provider> {                      # exactly one: a module of idv.providers
//			...                           # the provider's own options
//		}
//		session_ttl 24h                  # default 24h
//		session_retention 7d | off       # default 7d: expired sessions kept, then swept
//		timeout     30s                  # default 30s
//		webhook_auth header <name> <value>
//		webhook_auth basic  <user> <password>
//		webhook_auth oauth2 <client_id> <client_secret> [<token_ttl>]
//		webhook_auth none
//		cors_origins     <origin>...       # may call the routes (and send X-IDV) from another site
//		redirect_origins <origin>...       # default: the site's configured host names
//		session_quota    <requests> <window> | off   # default 10 10m
//		storage_namespace <name>
//		max_upload  32MiB                # default 32MiB: larger passthrough bodies get 413
//	}
//
// Secrets should be given as {env.NAME} placeholders: they are resolved
// when the handler starts, so they never appear in the adapted JSON.
func parseCaddyfile(helper httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(helper.Dispenser)
	return h, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Prefix = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "session_ttl", "timeout":
			name := d.Val()
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			if name == "timeout" {
				h.Timeout = caddy.Duration(dur)
			} else {
				h.SessionTTL = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "session_retention":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if d.Val() == "off" {
				h.SessionRetention = -1
			} else {
				dur, err := caddy.ParseDuration(d.Val())
				if err != nil || dur <= 0 {
					return d.Errf("session_retention: a positive duration or off, got %q", d.Val())
				}
				h.SessionRetention = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "webhook_auth":
			if h.WebhookAuth != nil {
				return d.Err("webhook_auth given twice")
			}
			wa, err := parseWebhookAuth(d)
			if err != nil {
				return err
			}
			h.WebhookAuth = wa
		case "cors_origins":
			h.CORSOrigins = append(h.CORSOrigins, d.RemainingArgs()...)
			if len(h.CORSOrigins) == 0 {
				return d.ArgErr()
			}
		case "redirect_origins":
			h.RedirectOrigins = append(h.RedirectOrigins, d.RemainingArgs()...)
			if len(h.RedirectOrigins) == 0 {
				return d.ArgErr()
			}
		case "session_quota":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] == "off":
				h.SessionQuota = &Quota{Disabled: true}
			case len(args) == 2:
				n, err := strconv.Atoi(args[0])
				if err != nil || n <= 0 {
					return d.Errf("session_quota: requests must be a positive number, got %q", args[0])
				}
				win, err := caddy.ParseDuration(args[1])
				if err != nil || win <= 0 {
					return d.Errf("session_quota: window must be a positive duration, got %q", args[1])
				}
				h.SessionQuota = &Quota{Requests: n, Window: caddy.Duration(win)}
			default:
				return d.Err("session_quota takes <requests> <window>, or off")
			}
		case "max_upload":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(d.Val())
			if err != nil || n == 0 || n > 1<<40 {
				return d.Errf("max_upload: a size such as 32MiB, got %q", d.Val())
			}
			h.MaxUpload = int64(n)
			if d.NextArg() {
				return d.ArgErr()
			}
		case "storage_namespace":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.StorageNamespace = d.Val()
		default:
			name := d.Val()
			if _, err := caddy.GetModule("idv.providers." + name); err != nil {
				return d.Err(suggest.Unknown("idv", name, idvOptions()))
			}
			if h.ProviderRaw != nil {
				return d.Errf("only one provider per idv block (found %s after another); use two idv blocks with different prefixes", name)
			}
			mod, err := caddyfile.UnmarshalModule(d, "idv.providers."+name)
			if err != nil {
				return err // the provider's own error names it and where
			}
			h.ProviderRaw = caddyconfig.JSONModuleObject(mod, "name", name, nil)
		}
	}
	if h.ProviderRaw == nil {
		return d.Errf("idv: a provider block is required (one of: %s)", strings.Join(providerNames(), ", "))
	}
	return nil
}

// idvOptions are the words valid in an idv block: its options and the
// providers' names.
func idvOptions() []string {
	opts := []string{"prefix", "session_ttl", "session_retention", "timeout", "webhook_auth",
		"cors_origins", "redirect_origins", "session_quota", "storage_namespace"}
	return append(opts, providerNames()...)
}

func parseWebhookAuth(d *caddyfile.Dispenser) (*webhookauth.Config, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Err("webhook_auth needs a method: header, basic, oauth2 or none")
	}
	wa := &webhookauth.Config{Method: args[0]}
	switch {
	case args[0] == webhookauth.Header && len(args) == 3:
		wa.Name, wa.Value = args[1], args[2]
	case args[0] == webhookauth.Basic && len(args) == 3:
		wa.Username, wa.Password = args[1], args[2]
	case args[0] == webhookauth.OAuth2 && (len(args) == 3 || len(args) == 4):
		wa.ClientID, wa.ClientSecret = args[1], args[2]
		if len(args) == 4 {
			dur, err := caddy.ParseDuration(args[3])
			if err != nil {
				return nil, d.Errf("webhook_auth oauth2 token_ttl: %v", err)
			}
			wa.TokenTTL = caddy.Duration(dur)
		}
	case args[0] == webhookauth.None && len(args) == 1:
	default:
		return nil, d.Errf("webhook_auth: expected header <name> <value>, basic <user> <password>, oauth2 <client_id> <client_secret> [<token_ttl>] or none; got %v", args)
	}
	return wa, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
