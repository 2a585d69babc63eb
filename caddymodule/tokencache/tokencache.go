// Package tokencache caches provider tokens until shortly before they expire,
// fetching each one once however many requests need it at the same time.
//
// A Cache is shared through a caddy.UsagePool (see Shared), so the tokens
// outlive a configuration reload: a reload creates new handlers but the same
// key finds the same Cache.
package tokencache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/singleflight"
)

// Fetcher obtains a fresh token and the time it expires.
type Fetcher func(ctx context.Context) (token string, expiresAt time.Time, err error)

// Stats are counters of what the cache did; all fields are cumulative. Each
// Get counts once: a hit, a miss (it fetched), a refresh (it fetched in place
// of a token about to expire) or coalesced (it waited for another's fetch).
type Stats struct {
	Hits, Misses, Refreshes, Coalesced, Fetches, Errors uint64
}

// Observer is told of every cache event; metrics hook in here.
type Observer func(event string)

// Cache is a token cache with single-flight fetching.
type Cache struct {
	c   *gocache.Cache
	sf  singleflight.Group
	now func() time.Time

	observer atomic.Pointer[Observer]

	hits, misses, refreshes, coalesced, fetches, errors atomic.Uint64
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{c: gocache.New(gocache.NoExpiration, 10*time.Minute), now: time.Now}
}

// SetObserver installs fn to be called on every cache event
// ("hit", "miss", "refresh", "coalesced", "error").
func (c *Cache) SetObserver(fn Observer) { c.observer.Store(&fn) }

func (c *Cache) emit(ev string) {
	if p := c.observer.Load(); p != nil && *p != nil {
		(*p)(ev)
	}
}

type entry struct {
	token     string
	refreshAt time.Time
}

// maxFetch bounds one fetch whatever the fetcher does.
const maxFetch = 2 * time.Minute

// Margin is how long before its expiry a token is treated as expired, so it
// is refreshed before the provider would refuse it: a tenth of its lifetime,
// at least one second and at most five minutes.
func Margin(lifetime time.Duration) time.Duration {
	m := lifetime / 10
	if m > 5*time.Minute {
		m = 5 * time.Minute
	}
	if m < time.Second {
		m = time.Second
	}
	return m
}

// Get returns the cached token for key, or calls fetch once for all
// concurrent callers and caches its result until shortly before it expires.
func (c *Cache) Get(ctx context.Context, key string, fetch Fetcher) (string, error) {
	v, ok := c.c.Get(key)
	if ok && c.now().Before(v.(entry).refreshAt) {
		c.hits.Add(1)
		c.emit("hit")
		return v.(entry).token, nil
	}
	stale := ok                  // still valid but inside its margin: fetch a new one
	ran, fetched := false, false // set only if this caller's flight is the one that runs
	ch := c.sf.DoChan(key, func() (any, error) {
		ran = true
		// A flight that finished between our cache read and DoChan has
		// cached a fresh token: use it rather than fetch twice.
		if v, ok := c.c.Get(key); ok && c.now().Before(v.(entry).refreshAt) {
			return v.(entry).token, nil
		}
		fetched = true
		c.fetches.Add(1)
		// Detached from the first caller's context, so that one caller
		// giving up does not fail the others; the fetch's own provider call
		// carries the handler's timeout, and this bounds anything else.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxFetch)
		defer cancel()
		tok, exp, err := fetch(fctx)
		if err != nil {
			c.errors.Add(1)
			c.emit("error")
			return nil, err
		}
		c.Set(key, tok, exp)
		return tok, nil
	})
	select {
	case res := <-ch: // receiving orders the write of ran before this read
		switch {
		case ran && !fetched:
			c.hits.Add(1)
			c.emit("hit")
		case ran && stale:
			c.refreshes.Add(1)
			c.emit("refresh")
		case ran:
			c.misses.Add(1)
			c.emit("miss")
		default:
			c.coalesced.Add(1)
			c.emit("coalesced")
		}
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Set caches token under key until Margin before expiresAt, when Get starts
// fetching a new one. A token that is already inside its margin is not cached.
func (c *Cache) Set(key, token string, expiresAt time.Time) {
	now := c.now()
	life := expiresAt.Sub(now)
	refreshAt := now.Add(life - Margin(life))
	if !refreshAt.After(now) {
		c.c.Delete(key)
		return
	}
	c.c.Set(key, entry{token: token, refreshAt: refreshAt}, life)
}

// Drop removes key if it still holds token (a token the provider refused).
// Comparing first keeps a token another request just refreshed.
func (c *Cache) Drop(key, token string) {
	if v, ok := c.c.Get(key); ok && v.(entry).token == token {
		c.c.Delete(key)
	}
}

// Len is the number of live tokens.
func (c *Cache) Len() int { return c.c.ItemCount() }

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Refreshes: c.refreshes.Load(),
		Coalesced: c.coalesced.Load(), Fetches: c.fetches.Load(), Errors: c.errors.Load()}
}

// Destruct implements caddy.Destructor so the pool can drop the cache when no
// configuration uses it any more.
func (c *Cache) Destruct() error {
	c.c.Flush()
	return nil
}

var pool = caddy.NewUsagePool()

// Shared returns the cache registered under key, creating it on first use,
// and a release func to call from the handler's Cleanup. Two configurations
// (before and after a reload) that use the same key share one cache.
func Shared(key string) (*Cache, func()) {
	v, _, _ := pool.LoadOrNew(key, func() (caddy.Destructor, error) { return New(), nil })
	return v.(*Cache), func() { _, _ = pool.Delete(key) }
}
