package redisstorage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/cluster"
)

// counter is a go-redis hook counting round trips and commands by name.
type counter struct {
	mu    sync.Mutex
	trips int
	cmds  map[string]int
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds...)
		return next(ctx, cmds)
	}
}

func (c *counter) add(cmds ...redis.Cmder) {
	for _, cmd := range cmds {
		if n := strings.ToLower(cmd.Name()); n == "hello" || n == "client" {
			return // a new connection's handshake, not the operation's
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips++
	for _, cmd := range cmds {
		c.cmds[strings.ToUpper(cmd.Name())]++
	}
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trips, c.cmds = 0, map[string]int{}
}

func (c *counter) get() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.cmds {
		m[k] = v
	}
	return c.trips, m
}

func counted(t *testing.T, s *Storage) *counter {
	c := &counter{cmds: map[string]int{}}
	s.client.AddHook(c)
	return c
}

// fill writes n unrelated keys straight into Redis (one pipeline per 1000).
func fill(t *testing.T, s *Storage, n int) {
	t.Helper()
	ctx := ctxT(t)
	for i := 0; i < n; i += 1000 {
		p := s.client.Pipeline()
		for j := i; j < min(i+1000, n); j++ {
			p.HSet(ctx, s.dataKey(fmt.Sprintf("certificates/acme/site%d/site.crt", j)), "value", "x", "modified", "")
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Deleting a file costs one round trip and never scans, however many keys
// Redis holds (it used to SCAN the whole keyspace per delete).
func TestDeleteOfAFileIsOneRoundTrip(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	fill(t, s, 15000)
	ctx := ctxT(t)
	const n = 200
	for i := 0; i < n; i++ {
		mustStore(t, s, fmt.Sprintf("idv/ns/sessions/%d.json", i), "{}")
	}
	c := counted(t, s)
	c.reset()
	for i := 0; i < n; i++ {
		if err := s.Delete(ctx, fmt.Sprintf("idv/ns/sessions/%d.json", i)); err != nil {
			t.Fatal(err)
		}
	}
	trips, cmds := c.get()
	if trips != n || cmds["SCAN"] != 0 {
		t.Fatalf("%d deletes of files among 15000 keys: %d round trips, commands %v; want %d and no SCAN", n, trips, cmds, n)
	}
	if _, err := s.Load(ctx, "idv/ns/sessions/0.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted file still loads: %v", err)
	}
}

func newSessionStore(s certmagic.Storage, now *time.Time) *session.StorageStore {
	return &session.StorageStore{Storage: s, Namespace: "scale", Now: func() time.Time { return *now }}
}

// The sweep reads only the sessions due: its round trips grow with the
// expired sessions, not with the live ones or the rest of the keyspace.
// Sessions stored before the expiry index existed (plain Store) are indexed
// by the first sweep (one listing) and then swept like the others.
func TestSweepIsLinearInExpiredSessions(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	fill(t, s, 5000)
	ctx := ctxT(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := newSessionStore(s, &now)
	// A storage that hides StoreIndexed writes as before the index.
	legacy := newSessionStore(struct{ certmagic.Storage }{s}, &now)
	mk := func(store *session.StorageStore, ref string, expires time.Time) {
		x := &session.Session{UniqueID: session.NewID(), Ref: ref, ExpiresAt: expires}
		if err := store.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	const live, dueLegacy, due = 1000, 30, 60
	for i := 0; i < live; i++ {
		mk(st, fmt.Sprintf("live-%d", i), now.Add(100*24*time.Hour))
	}
	for i := 0; i < dueLegacy; i++ {
		mk(legacy, fmt.Sprintf("legacy-%d", i), now.Add(time.Hour))
	}
	if n, err := st.Sweep(ctx, 7*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("first sweep (indexing the older sessions): %d %v", n, err)
	}
	for i := 0; i < due; i++ {
		mk(st, fmt.Sprintf("due-%d", i), now.Add(time.Hour))
	}
	now = now.Add(10 * 24 * time.Hour)
	c := counted(t, s)
	c.reset()
	n, err := st.Sweep(ctx, 7*24*time.Hour)
	if err != nil || n != dueLegacy+due {
		t.Fatalf("sweep: %d %v, want %d deleted", n, err, dueLegacy+due)
	}
	trips, cmds := c.get()
	if limit := 6*(dueLegacy+due) + 4; cmds["SCAN"] != 0 || trips > limit {
		t.Fatalf("sweeping %d of %d sessions among 5000 other keys: %d round trips %v; want at most %d and no SCAN",
			dueLegacy+due, live+dueLegacy+due, trips, cmds, limit)
	}
	for _, ref := range []string{"legacy-0", "due-0"} {
		if _, err := st.LoadByRef(ctx, ref); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s survived the sweep: %v", ref, err)
		}
	}
	if _, err := st.LoadByRef(ctx, "live-0"); err != nil {
		t.Errorf("a live session was swept: %v", err)
	}
	// A sweep with nothing due is a constant number of round trips.
	c.reset()
	if n, err := st.Sweep(ctx, 7*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("idle sweep: %d %v", n, err)
	}
	if trips, cmds := c.get(); trips > 2 {
		t.Fatalf("a sweep with nothing due: %d round trips %v", trips, cmds)
	}
}

// Creating a session (record, index record, expiry index) is one round
// trip on Redis.
func TestCreateIsOneRoundTrip(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	now := time.Now()
	st := newSessionStore(s, &now)
	c := counted(t, s)
	c.reset()
	x := &session.Session{UniqueID: session.NewID(), Ref: "iv", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctxT(t), x); err != nil {
		t.Fatal(err)
	}
	if trips, cmds := c.get(); trips != 1 || cmds["HSET"] != 2 || cmds["ZADD"] != 1 {
		t.Fatalf("Create: %d round trips %v", trips, cmds)
	}
	if got, err := st.LoadByRef(ctxT(t), "iv"); err != nil || got.UniqueID != x.UniqueID {
		t.Fatalf("LoadByRef: %v %v", got, err)
	}
}

// Within one process, a holder whose lease expired keeps the lock's gate:
// the next caller waits for its Unlock instead of taking a lock the old
// holder would then release.
func TestExpiredHolderCannotReleaseSuccessorInProcess(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr, func(s *Storage) { s.LockTTL = caddy.Duration(100 * time.Millisecond) })
	other := newStorage(t, r.Addr)
	ctx := ctxT(t)
	if err := s.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	freeze(s)
	// Wait until Redis has expired the lease.
	for s.client.Exists(ctx, s.lockNS+"job").Val() == 1 {
		time.Sleep(10 * time.Millisecond)
	}
	if ok, err := s.TryLock(ctx, "job"); ok || err != nil {
		t.Fatalf("a second holder in the process took the lock while the first had not unlocked: %v %v", ok, err)
	}
	got := make(chan error, 1)
	go func() { got <- s.Lock(ctx, "job") }()
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) before the old holder's Unlock", err)
	default:
	}
	if err := s.Unlock(ctx, "job"); err != nil { // the old holder
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// The successor holds it: another process cannot take it.
	if ok, _ := other.TryLock(ctx, "job"); ok {
		t.Fatal("the successor's lock was not held")
	}
	if err := s.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := other.TryLock(ctx, "job"); !ok {
		t.Fatal("the successor's Unlock did not release")
	}
	_ = other.Unlock(ctx, "job")
}

// ProbeWrite fails when the server is gone.
func TestProbeWrite(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr, func(s *Storage) { s.Timeout = caddy.Duration(time.Second) })
	if err := s.ProbeWrite(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := s.ProbeWrite(ctxT(t)); err == nil {
		t.Fatal("ProbeWrite succeeded with the server down")
	}
}
