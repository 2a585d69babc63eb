// Package caddymodule is the idv HTTP handler: it answers the routes of one
// identity-verification provider under a path prefix and passes every other
// request to the next handler.
package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/tokencache"
	"github.com/caddy-idv/caddy-idv/caddymodule/webhookauth"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the idv handler (module ID http.handlers.idv).
type Handler struct {
	// Prefix is the path under which the handler answers its routes; every
	// request outside it goes to the next handler. Default: "/api".
	Prefix string `json:"prefix,omitempty"`

	// Provider is the identity-verification provider, a module in the
	// idv.providers namespace.
	ProviderRaw json.RawMessage `json:"provider,omitempty" caddy:"namespace=idv.providers inline_key=name"`

	// SessionTTL is how long a stored session lives. Default: 24h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// SessionRetention is how long an expired session is kept in storage
	// (late webhooks still find it) before a background sweep deletes it.
	// Default: 7 days. A negative value turns the sweep off.
	SessionRetention caddy.Duration `json:"session_retention,omitempty"`

	// Timeout is the longest a provider call may take. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// WebhookAuth authenticates the provider's webhook calls. Without it,
	// webhook routes answer 403 (fail closed).
	WebhookAuth *webhookauth.Config `json:"webhook_auth,omitempty"`

	// CORSOrigins are the origins allowed to call the routes from another
	// site. Without them no CORS header is ever sent.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// RedirectOrigins are the origins a redirectionUrl may point to.
	// Default: the host names the site is configured with (its address or
	// host matchers, never the request's Host header), in https, or in http
	// too when the client's request was plain http. A site without host
	// names (such as :8080) refuses redirectionUrl unless these are set.
	RedirectOrigins []string `json:"redirect_origins,omitempty"`

	// SessionQuota limits how many provider sessions one client IP may
	// create. Default: 10 per 10 minutes.
	SessionQuota *Quota `json:"session_quota,omitempty"`

	// StorageNamespace separates the sessions of handlers sharing one
	// storage. Default: derived from the provider name and the prefix, so
	// instances of one site in a cluster share their sessions.
	StorageNamespace string `json:"storage_namespace,omitempty"`

	// MaxUpload is the largest request body the passthrough forwards, in
	// bytes: a larger one is answered 413 (at once when its Content-Length
	// says so, when the limit is crossed for a chunked body). Default 32 MiB.
	MaxUpload int64 `json:"max_upload,omitempty"`

	provider  provider.Provider
	host      *provider.Host
	exact     map[string]*provider.Route
	subtrees  []*provider.Route
	logger    *zap.Logger
	store     session.Store
	namespace string
	quota     *limiter
	authLimit *limiter
	st        *state
	access    *accessLogger
	releases  []func()
	cors      map[string]bool
	redirects map[string]bool
	transport *http.Transport
	name      string
	storage   certmagic.Storage
	creds     *credCache
	// credHeaders are every route's credential headers: never forwarded.
	credHeaders []string
	sandbox     string // X-IDV-Sandbox: "1" when the provider's API is on loopback
	events      *hub
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.idv",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Cookie is the name of the cookie that binds a browser to its session.
const Cookie = "idv_session"

// MaxBody is the limit on token-server request bodies.
const MaxBody = 1 << 20

// DefaultMaxUpload is the default limit on passthrough request bodies.
const DefaultMaxUpload = 32 << 20

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = withRedaction(ctx.Logger())
	h.st = &state{}
	if h.Prefix == "" {
		h.Prefix = "/api"
	}
	if !strings.HasPrefix(h.Prefix, "/") {
		return fmt.Errorf("prefix must start with /, got %q", h.Prefix)
	}
	h.Prefix = strings.TrimSuffix(h.Prefix, "/")
	if h.Prefix == "" {
		return fmt.Errorf("prefix / would answer every request of the site; use a path such as /api")
	}
	if h.SessionTTL == 0 {
		h.SessionTTL = caddy.Duration(24 * time.Hour)
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(30 * time.Second)
	}
	if h.MaxUpload == 0 {
		h.MaxUpload = DefaultMaxUpload
	}
	h.creds = &credCache{}
	if h.ProviderRaw == nil {
		return fmt.Errorf("idv: a provider block is required (one of: %s)", strings.Join(providerNames(), ", "))
	}
	// Read before LoadModule, which drops the raw configuration.
	confSum := sha256.Sum256([]byte(placeholder.Resolve(string(h.ProviderRaw))))
	mod, err := ctx.LoadModule(h, "ProviderRaw")
	if err != nil {
		return fmt.Errorf("idv: %w", err)
	}
	p, ok := mod.(provider.Provider)
	if !ok {
		return fmt.Errorf("idv: module %T is not an idv provider", mod)
	}
	h.provider = p
	name := string(mod.(caddy.Module).CaddyModule().ID.Name())
	h.name = name
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("idv: registering metrics: %w", err)
	}

	for _, o := range h.CORSOrigins {
		h.cors = setOf(h.cors, o)
	}
	for _, o := range h.RedirectOrigins {
		h.redirects = setOf(h.redirects, o)
	}
	if h.WebhookAuth != nil {
		if err := h.WebhookAuth.Provision(); err != nil {
			return fmt.Errorf("webhook_auth: %w", err)
		}
		if h.WebhookAuth.Method == webhookauth.None {
			h.logger.Warn("webhook_auth none: webhook routes accept unauthenticated calls")
		}
	}

	hookHeader := ""
	if h.WebhookAuth != nil {
		hookHeader = h.WebhookAuth.HeaderName()
	}
	h.access = newAccessLogger(ctx, hookHeader)

	// One transport per handler; the token cache is shared across reloads.
	h.transport = &http.Transport{
		Proxy:                 nil, // provider calls never go through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Duration(h.Timeout),
		ForceAttemptHTTP2:     true,
	}
	// The token cache is shared across reloads by every handler with the
	// same prefix and provider configuration, with its placeholders
	// resolved: the account and the credentials are in it, so a token
	// obtained with one set is never used after they change. It is keyed
	// before the provider provisions, so the Host is complete when it does.
	tokens, release := tokencache.Shared(name + "\x00" + h.Prefix + "\x00" + h.StorageNamespace + "\x00" + hex.EncodeToString(confSum[:]))
	tokens.SetObserver(func(ev string) { countEvent(metrics.tokenCache, name, ev) })
	h.releases = append(h.releases, release)
	store := &session.StorageStore{Storage: ctx.Storage()}
	h.store = store
	h.storage = ctx.Storage()
	// The session store's namespace depends on the account the provider
	// talks to (Identifier), so it is opened after the provider resolved
	// its configuration; nothing of the Host reads it before a request.
	h.host = &provider.Host{
		Logger:      h.logger.Named(name),
		Tokens:      tokens,
		HTTP:        &http.Client{Transport: h.transport, CheckRedirect: noRedirects},
		Transport:   h.transport,
		Timeout:     time.Duration(h.Timeout),
		Prefix:      h.Prefix,
		Now:         func() time.Time { return time.Now().UTC() },
		Record:      h.recordPush,
		Redact:      RegisterSecret,
		RedactUntil: RegisterSecretUntil,
		Observe:     func(op string, status int, d time.Duration) { observeCall(name, op, status, d) },
		Count:       func(kind, outcome string) { h.count(kind, outcome) },
	}
	if err := p.ProvisionIDV(ctx, h.host); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, s := range p.Secrets() {
		RegisterSecret(s)
	}
	h.sandbox = "0"
	if onLoopback(p) {
		h.sandbox = "1"
	}
	if defaultWebhookSecret(h.WebhookAuth, p) && !onLoopback(p) {
		// The shipped Caddyfiles default webhook secrets to public sandbox
		// values: against a real provider, that would be no secret at all.
		return fmt.Errorf("webhook_auth: the credential comes from a placeholder's default ({env.NAME:default} with NAME unset), " +
			"a value written in the configuration; that is for a sandbox on this machine only: set the variable")
	}

	identity := ""
	if id, ok := p.(provider.Identifier); ok {
		identity = id.Identity()
	}
	h.namespace = h.StorageNamespace
	if h.namespace == "" {
		sum := sha256.Sum256([]byte(name + "\x00" + h.Prefix + "\x00" + identity))
		h.namespace = name + "-" + hex.EncodeToString(sum[:4])
	}
	if strings.ContainsAny(h.namespace, "/\\") || strings.Contains(h.namespace, "..") {
		return fmt.Errorf("idv: storage_namespace must not contain a path separator or '..'")
	}
	store.Namespace = h.namespace
	if err := store.Open(); err != nil {
		return fmt.Errorf("idv: %w", err)
	}
	h.releases = append(h.releases, store.Close)
	if h.SessionQuota == nil {
		h.SessionQuota = &Quota{}
	}
	quota, releaseQuota, err := h.SessionQuota.provision(h.namespace)
	if err != nil {
		return err
	}
	h.quota = quota
	h.releases = append(h.releases, releaseQuota)
	authLimit, releaseAuth, err := authLimiter(h.namespace)
	if err != nil {
		return err
	}
	h.authLimit = authLimit
	h.releases = append(h.releases, releaseAuth)
	if h.SessionRetention == 0 {
		h.SessionRetention = caddy.Duration(DefaultRetention)
	}
	if h.SessionRetention > 0 {
		releaseSweeper, err := h.startSweeper(store)
		if err != nil {
			return err
		}
		h.releases = append(h.releases, releaseSweeper)
	}
	if h.WebhookAuth != nil {
		for _, s := range h.WebhookAuth.Secrets() {
			RegisterSecret(s)
		}
	}

	h.setupEvents(ctx)

	h.exact = map[string]*provider.Route{}
	routes := append(p.Routes(), h.coreRoutes()...)
	if err := h.kitRoutes(routes); err != nil {
		return err
	}
	for i := range routes {
		rt := &routes[i]
		if rt.Forward != nil {
			if err := h.forwardRoute(rt); err != nil {
				return err
			}
		}
		h.access.hideHeaders(rt.CredentialHeaders...)
		for _, hd := range rt.CredentialHeaders {
			if hd = http.CanonicalHeaderKey(hd); !slices.Contains(h.credHeaders, hd) {
				h.credHeaders = append(h.credHeaders, hd)
			}
		}
		if rt.Subtree {
			h.subtrees = append(h.subtrees, rt)
			continue
		}
		if _, dup := h.exact[rt.Path]; dup {
			return fmt.Errorf("idv: route %s declared twice", rt.Path)
		}
		h.exact[rt.Path] = rt
	}
	h.logger.Info("idv handler ready", zap.String("provider", name), zap.String("prefix", h.Prefix),
		zap.String("storage_namespace", h.namespace), zap.Int("routes", len(routes)))
	return nil
}

// count records a session or webhook event in the metrics.
func (h *Handler) count(kind, outcome string) {
	switch kind {
	case provider.CountSessions:
		countEvent(metrics.sessions, h.name, outcome)
	case provider.CountWebhooks:
		countEvent(metrics.webhooks, h.name, outcome)
	}
}

// noRedirects keeps provider calls on the configured host: a redirect to
// another host would carry the credentials there.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func setOf(m map[string]bool, origin string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[strings.TrimSuffix(strings.ToLower(origin), "/")] = true
	return m
}

// Validate checks the configuration after provisioning.
func (h *Handler) Validate() error {
	if h.MaxUpload < 0 {
		return fmt.Errorf("idv: max_upload must be positive")
	}
	if h.SessionTTL < 0 || h.Timeout < 0 {
		return fmt.Errorf("idv: session_ttl and timeout must be positive")
	}
	if v, ok := h.provider.(caddy.Validator); ok {
		return v.Validate()
	}
	return nil
}

// Cleanup releases what the handler shares with others.
func (h *Handler) Cleanup() error {
	for _, r := range h.releases {
		r()
	}
	if c, ok := h.provider.(caddy.CleanerUpper); ok {
		_ = c.Cleanup()
	}
	if h.transport != nil {
		h.transport.CloseIdleConnections()
	}
	return nil
}

// ServeHTTP answers requests under the prefix and passes the rest on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rest, ok := strings.CutPrefix(r.URL.Path, h.Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		// A request under the prefix that a rewrite before idv moved
		// elsewhere (try_files {path} /index.html) is still idv's.
		cr, crest, claimed := h.claimOriginal(r)
		if !claimed {
			return next.ServeHTTP(w, r) // the hot path: two prefix comparisons
		}
		r, rest = cr, crest
	}
	if lw, done := h.access.wrap(w, r); done != nil {
		defer done()
		w = lw
	}
	h.serveAPI(w, r, rest)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// providerNames lists the provider modules compiled in, for messages.
func providerNames() []string {
	var names []string
	for _, m := range caddy.GetModules("idv.providers") {
		names = append(names, string(m.ID.Name()))
	}
	return names
}
