package caddymodule

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
	"github.com/caddy-idv/caddy-idv/caddymodule/webhookauth"
)

// Summary describes one running idv handler, for the start-up message.
type Summary struct {
	// Site is the URL to open for the server the handler is on.
	Site     string
	Prefix   string
	Provider string
	// API is the provider's base URL, when the provider tells it.
	API string
	// Sandbox is true when API is served by an idv_sandbox of this process.
	Sandbox bool
}

// Summaries lists the idv handlers of the running configuration, in the
// order of their sites and prefixes. It reads the provisioned servers, so
// call it once the configuration has started.
func Summaries(ctx caddy.Context) []Summary {
	appIface, err := ctx.AppIfConfigured("http")
	if err != nil || appIface == nil {
		return nil
	}
	app, ok := appIface.(*caddyhttp.App)
	if !ok {
		return nil
	}
	// Where the sandboxes listen: ports of servers that run idv_sandbox.
	sandboxPorts := map[string]bool{}
	type found struct {
		srv *caddyhttp.Server
		h   *Handler
	}
	var handlers []found
	for _, srv := range app.Servers {
		walkRoutes(srv.Routes, func(mh caddyhttp.MiddlewareHandler) {
			switch h := mh.(type) {
			case *sandbox.Handler:
				for _, l := range srv.Listen {
					sandboxPorts[listenPort(l)] = true
				}
			case *Handler:
				handlers = append(handlers, found{srv, h})
			}
		})
	}
	var out []Summary
	for _, f := range handlers {
		s := Summary{Site: siteURL(f.srv), Prefix: f.h.Prefix, Provider: f.h.name}
		if b, ok := f.h.provider.(interface{ APIBase() string }); ok {
			s.API = b.APIBase()
			if u, err := url.Parse(s.API); err == nil && isLoopback(u.Hostname()) {
				s.Sandbox = sandboxPorts[u.Port()]
			}
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].Prefix < out[j].Prefix
	})
	return out
}

// StartupMessage is what `caddy run` prints once serving: the URL to open,
// and which provider each prefix talks to, sandbox or not.
func StartupMessage(sums []Summary) string {
	if len(sums) == 0 {
		return ""
	}
	var b strings.Builder
	sites := map[string]bool{}
	for _, s := range sums {
		if !sites[s.Site] {
			sites[s.Site] = true
			fmt.Fprintf(&b, "caddy-idv is serving: open %s\n", s.Site)
		}
	}
	sandboxed := 0
	for _, s := range sums {
		to := s.API
		switch {
		case s.Sandbox:
			to += " (the offline sandbox)"
			sandboxed++
		case to == "":
			to = "(its configured API)"
		}
		fmt.Fprintf(&b, "  %-14s %-7s -> %s\n", s.Prefix+"/", s.Provider, to)
	}
	switch {
	case sandboxed == len(sums):
		b.WriteString("Every provider is the sandbox: no account needed. For a real API see .env.example.\n")
	case sandboxed > 0:
		b.WriteString("Providers marked (the offline sandbox) are emulated; the others are real APIs.\n")
	}
	return b.String()
}

func walkRoutes(routes caddyhttp.RouteList, f func(caddyhttp.MiddlewareHandler)) {
	for _, r := range routes {
		for _, mh := range r.Handlers {
			f(mh)
			if sub, ok := mh.(*caddyhttp.Subroute); ok {
				walkRoutes(sub.Routes, f)
			}
		}
	}
}

func listenPort(addr string) string {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return ""
	}
	return fmt.Sprint(na.StartPort)
}

func siteURL(srv *caddyhttp.Server) string {
	if len(srv.Listen) == 0 {
		return ""
	}
	na, err := caddy.ParseNetworkAddress(srv.Listen[0])
	if err != nil {
		return ""
	}
	host := na.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http"
	if len(srv.TLSConnPolicies) > 0 {
		scheme = "https"
	}
	port := fmt.Sprint(na.StartPort)
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return scheme + "://" + host + "/"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// defaultWebhookSecret reports whether a secret that authenticates webhooks
// (webhook_auth's, or the provider's own signing secrets) comes from a
// placeholder's written-in default ({env.NAME:default}, NAME unset).
func defaultWebhookSecret(wa *webhookauth.Config, p any) bool {
	if wa != nil && wa.DefaultSecret() {
		return true
	}
	if ws, ok := p.(interface{ WebhookSecretsConfig() []string }); ok {
		for _, raw := range ws.WebhookSecretsConfig() {
			if placeholder.DefaultUsed(raw) {
				return true
			}
		}
	}
	return false
}

// onLoopback reports whether provider p talks to an API on this machine
// (the sandbox), as far as it says.
func onLoopback(p any) bool {
	b, ok := p.(interface{ APIBase() string })
	if !ok {
		return false
	}
	u, err := url.Parse(b.APIBase())
	return err == nil && isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
