package caddymodule

import (
	"net/http"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// CredCacheTTL is the longest a passthrough request trusts its session's
// credential from memory without reading storage. A session's provider token
// never changes, so the only thing a stale entry can miss is the session being
// deleted (or its storage wiped) by another instance of the cluster: such a
// session keeps working through the passthrough of a node that cached it for
// at most this long. An entry never outlives its session's ExpiresAt.
var CredCacheTTL = 30 * time.Second

// CredCacheSize bounds the entries of one handler's credential cache (about
// 200 bytes each).
var CredCacheSize = 50_000

// cred is what the passthrough needs of a session.
type cred struct {
	provider string
	token    string
	expires  time.Time // the session's own expiry
	until    time.Time // when this entry must be read again from storage
}

// credCache maps a uniqueId to its session's credential, so that proxying an
// SDK call bound by the session cookie costs no storage read or JSON decode.
type credCache struct {
	mu sync.RWMutex
	m  map[string]cred
}

func (c *credCache) get(id string, now time.Time) (cred, bool) {
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return cred{}, false
	}
	return e, true
}

func (c *credCache) put(s *session.Session, now time.Time) {
	until := now.Add(CredCacheTTL)
	if s.ExpiresAt.Before(until) {
		until = s.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cred{}
	}
	if len(c.m) >= CredCacheSize {
		c.evict(now)
	}
	c.m[s.UniqueID] = cred{provider: s.Provider, token: s.Token, expires: s.ExpiresAt, until: until}
}

// evict drops the stale entries, then, if the cache is still full, an
// arbitrary tenth of it (map order is random): a full cache is a burst of
// new sessions or of made-up cookies, and a dropped entry costs one read.
func (c *credCache) evict(now time.Time) {
	for id, e := range c.m {
		if !now.Before(e.until) {
			delete(c.m, id)
		}
	}
	drop := len(c.m) - CredCacheSize + CredCacheSize/10 + 1
	for id := range c.m {
		if drop <= 0 {
			break
		}
		delete(c.m, id)
		drop--
	}
}

func (c *credCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func (c *credCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// passthroughSession is sessionFromCookie for the passthrough routes: it
// returns only the credential view of the session (UniqueID, Provider, Token,
// ExpiresAt), from memory when this node read it less than CredCacheTTL ago.
func (h *Handler) passthroughSession(r *http.Request, id string) *session.Session {
	if h.creds == nil {
		return h.loadLive(r, id)
	}
	now := time.Now()
	if e, ok := h.creds.get(id, now); ok {
		return &session.Session{UniqueID: id, Provider: e.provider, Token: e.token, ExpiresAt: e.expires}
	}
	s := h.loadLive(r, id)
	if s == nil {
		h.creds.forget(id)
		return nil
	}
	h.creds.put(s, now)
	return s
}
