package caddymodule

import (
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

func TestCredCacheEntriesEndWithTheirSession(t *testing.T) {
	var c credCache
	now := time.Now()
	s := &session.Session{UniqueID: "a", Provider: "incode", Token: "tok", ExpiresAt: now.Add(5 * time.Second)}
	c.put(s, now)
	if e, ok := c.get("a", now.Add(time.Second)); !ok || e.token != "tok" || e.provider != "incode" {
		t.Fatalf("fresh entry: %+v %v", e, ok)
	}
	// The session expires before CredCacheTTL: so does its entry.
	if _, ok := c.get("a", now.Add(5*time.Second)); ok {
		t.Fatal("an entry outlived its session")
	}
	long := &session.Session{UniqueID: "b", Token: "t", ExpiresAt: now.Add(24 * time.Hour)}
	c.put(long, now)
	if _, ok := c.get("b", now.Add(CredCacheTTL-time.Nanosecond)); !ok {
		t.Fatal("entry gone before CredCacheTTL")
	}
	if _, ok := c.get("b", now.Add(CredCacheTTL)); ok {
		t.Fatal("an entry was trusted longer than CredCacheTTL")
	}
	expired := &session.Session{UniqueID: "c", Token: "t", ExpiresAt: now}
	c.put(expired, now)
	if _, ok := c.get("c", now); ok {
		t.Fatal("an expired session was cached")
	}
	c.forget("b")
	if _, ok := c.get("b", now); ok {
		t.Fatal("forget kept the entry")
	}
}

func TestCredCacheIsBounded(t *testing.T) {
	defer func(n int) { CredCacheSize = n }(CredCacheSize)
	CredCacheSize = 100
	var c credCache
	now := time.Now()
	for i := 0; i < 1000; i++ {
		c.put(&session.Session{UniqueID: session.NewID(), Token: "t", ExpiresAt: now.Add(time.Hour)}, now)
		if n := c.len(); n > CredCacheSize {
			t.Fatalf("%d entries, bound %d", n, CredCacheSize)
		}
	}
	// Stale entries go first.
	c = credCache{}
	for i := 0; i < CredCacheSize; i++ {
		c.put(&session.Session{UniqueID: session.NewID(), Token: "t", ExpiresAt: now.Add(time.Minute)}, now)
	}
	later := now.Add(2 * time.Minute)
	c.put(&session.Session{UniqueID: "new", Token: "t", ExpiresAt: later.Add(time.Hour)}, later)
	if n := c.len(); n != 1 {
		t.Fatalf("%d entries after the stale ones were dropped, want 1", n)
	}
}
