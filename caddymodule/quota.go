package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/time/rate"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// Quota limits session creation per client IP: every /start that would
// create a billable provider session counts; resuming one does not.
//
// The limiter is golang.org/x/time/rate (a token bucket per client), held in
// a caddy.UsagePool so a reload keeps the counts. The client IP is Caddy's
// (it honours the server's trusted_proxies).
type Quota struct {
	// Requests is how many sessions one client may create per Window.
	// Default: 10.
	Requests int `json:"requests,omitempty"`
	// Window is the period of the quota. Default: 10m.
	Window caddy.Duration `json:"window,omitempty"`
	// Disabled turns the quota off.
	Disabled bool `json:"disabled,omitempty"`
}

type limiter struct {
	mu      sync.Mutex
	clients *gocache.Cache
	every   rate.Limit
	burst   int
	// inflight counts each client's attempts being checked (see begin).
	inflight map[string]int
}

func (l *limiter) Destruct() error { l.clients.Flush(); return nil }

var quotaPool = caddy.NewUsagePool()

// provision returns the limiter shared under this quota's key and the func
// that releases it.
func (q *Quota) provision(namespace string) (*limiter, func(), error) {
	if q.Disabled {
		return nil, func() {}, nil
	}
	if q.Requests == 0 {
		q.Requests = 10
	}
	if q.Window == 0 {
		q.Window = caddy.Duration(10 * time.Minute)
	}
	if q.Requests < 0 || q.Window < 0 {
		return nil, nil, fmt.Errorf("session_quota: requests and window must be positive")
	}
	key := fmt.Sprintf("%s/%d/%d", namespace, q.Requests, q.Window)
	return sharedLimiter(key, rate.Every(time.Duration(q.Window)/time.Duration(q.Requests)), q.Requests, time.Duration(q.Window))
}

// sharedLimiter returns the limiter held in the pool under key (created with
// one token per every, burst tokens, entries kept for window) and the func
// that releases it.
func sharedLimiter(key string, every rate.Limit, burst int, window time.Duration) (*limiter, func(), error) {
	v, _, err := quotaPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return &limiter{
			clients: gocache.New(window, window),
			every:   every,
			burst:   burst,
		}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(*limiter), func() { _, _ = quotaPool.Delete(key) }, nil
}

func (l *limiter) get(client string, window time.Duration) *rate.Limiter {
	var lim *rate.Limiter
	if v, ok := l.clients.Get(client); ok {
		lim = v.(*rate.Limiter)
	} else {
		lim = rate.NewLimiter(l.every, l.burst)
	}
	// A full bucket refills within one window; keep the entry that long.
	l.clients.Set(client, lim, window)
	return lim
}

func (l *limiter) allow(client string, window time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := l.get(client, window).Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d
	}
	return 0
}

// clientKey is who the quota counts: the client IP as Caddy sees it, and
// for IPv6 its /64, since anyone holding a /64 can rotate addresses in it.
func clientKey(r *http.Request) string {
	ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if !ok || ip == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ip = host
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is6() {
		prefix, _ := addr.Prefix(64)
		return prefix.String()
	}
	return addr.String()
}

func (h *Handler) allowCreate(r *http.Request) error {
	if err := h.checkWritable(r); err != nil {
		return err
	}
	if h.quota == nil {
		return nil
	}
	if wait := h.quota.allow(clientKey(r), time.Duration(h.SessionQuota.Window)); wait > 0 {
		return &provider.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Msg: fmt.Sprintf("too many new sessions from this client: at most %d per %s", h.SessionQuota.Requests, time.Duration(h.SessionQuota.Window))}
	}
	return nil
}

// Failed webhook authentications, and calls of <prefix>/webhook/token, are
// limited per client: AuthBurst at once, then one per AuthEvery. A provider
// sending the right credentials is never limited on its webhooks.
var (
	AuthBurst = 10
	AuthEvery = 6 * time.Second
)

func authLimiter(namespace string) (*limiter, func(), error) {
	return sharedLimiter(fmt.Sprintf("%s/webhook-auth/%d/%d", namespace, AuthBurst, AuthEvery), rate.Every(AuthEvery), AuthBurst, AuthEvery*time.Duration(AuthBurst))
}

// begin starts an attempt of client that costs one from its budget if it
// fails. Attempts being checked count against the budget, so guesses sent
// at once each need a free attempt (checking first and spending after a
// failure would let every guess in flight through). It returns how long to
// wait when the budget is used up, or the function that ends the attempt.
func (l *limiter) begin(client string) (time.Duration, func(failed bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.get(client, time.Duration(float64(l.burst)/float64(l.every)*float64(time.Second)))
	avail := lim.Tokens() - float64(l.inflight[client])
	if avail < 1 {
		return time.Duration((1 - avail) / float64(l.every) * float64(time.Second)), nil
	}
	if l.inflight == nil {
		l.inflight = map[string]int{}
	}
	l.inflight[client]++
	return 0, func(failed bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inflight[client]--; l.inflight[client] <= 0 {
			delete(l.inflight, client)
		}
		if failed {
			lim.Allow()
		}
	}
}

func (h *Handler) tooMany(what string, wait time.Duration) error {
	if wait < time.Second {
		wait = time.Second
	}
	return &provider.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
		Msg: fmt.Sprintf("too many %s from this client: at most %d, then one per %s", what, AuthBurst, AuthEvery)}
}
