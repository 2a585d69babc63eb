package redisstorage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/internal/cluster"
)

var salt atomic.Int64

// newStorage provisions a Storage against addr with its own client (so two
// instances behave like two processes) and cleans it up with the test.
func newStorage(t *testing.T, addr string, adjust ...func(*Storage)) *Storage {
	t.Helper()
	s := &Storage{Address: addr, poolSalt: fmt.Sprint(salt.Add(1))}
	for _, f := range adjust {
		f(s)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := s.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { _ = s.Cleanup(); cancel() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustStore(t *testing.T, s *Storage, key, val string) {
	t.Helper()
	if err := s.Store(ctxT(t), key, []byte(val)); err != nil {
		t.Fatalf("store %s: %v", key, err)
	}
}

func TestStoreLoadExistsStat(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	ctx := ctxT(t)

	if _, err := s.Load(ctx, "a/b/c.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("load of a missing key: want fs.ErrNotExist, got %v", err)
	}
	if _, err := s.Stat(ctx, "a/b/c.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a missing key: want fs.ErrNotExist, got %v", err)
	}
	before := time.Now().Add(-time.Second)
	mustStore(t, s, "a/b/c.json", `{"v":1}`)
	after := time.Now().Add(time.Second)

	got, err := s.Load(ctx, "a/b/c.json")
	if err != nil || string(got) != `{"v":1}` {
		t.Fatalf("load: %q %v", got, err)
	}
	// Binary and empty values survive.
	bin := []byte{0, 1, 2, 255, '\r', '\n'}
	if err := s.Store(ctx, "bin", bin); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "bin"); !bytes.Equal(got, bin) {
		t.Fatalf("binary value: %v", got)
	}
	if err := s.Store(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty value: %q %v", got, err)
	}

	for key, want := range map[string]bool{
		"a/b/c.json": true, "a/b": true, "a": true, "/a/b/": true, // leading/trailing slashes are ignored
		"a/b/c": false, "a/b/c.json/x": false, "a/bb": false, "b": false,
	} {
		if s.Exists(ctx, key) != want {
			t.Errorf("Exists(%q) = %v, want %v", key, !want, want)
		}
	}

	info, err := s.Stat(ctx, "a/b/c.json")
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsTerminal || info.Size != int64(len(`{"v":1}`)) || info.Key != "a/b/c.json" ||
		info.Modified.Before(before) || info.Modified.After(after) {
		t.Fatalf("stat of a file: %+v", info)
	}
	dir, err := s.Stat(ctx, "a/b")
	if err != nil || dir.IsTerminal || dir.Key != "a/b" {
		t.Fatalf("stat of a directory: %+v %v", dir, err)
	}

	// Overwriting replaces the value and moves the modification time on.
	mustStore(t, s, "a/b/c.json", `{"v":22}`)
	got, _ = s.Load(ctx, "a/b/c.json")
	info2, _ := s.Stat(ctx, "a/b/c.json")
	if string(got) != `{"v":22}` || info2.Size != 8 || info2.Modified.Before(info.Modified) {
		t.Fatalf("after overwrite: %q %+v", got, info2)
	}
}

func TestDeleteRemovesKeyAndEverythingBelow(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	ctx := ctxT(t)
	for _, k := range []string{"a/b/1", "a/b/2", "a/b/deep/3", "a/c", "ab/x", "a"} {
		mustStore(t, s, k, k)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/b/1", "a/b/2", "a/b/deep/3"} {
		if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived the delete of a/b: %v", k, err)
		}
	}
	if s.Exists(ctx, "a/b") {
		t.Error("a/b still exists")
	}
	if _, err := s.Load(ctx, "a/c"); err != nil {
		t.Errorf("a/c was deleted with a/b: %v", err)
	}
	// "a" is both a file and a directory here (which the file system
	// storage cannot be): like os.RemoveAll on a file, Delete removes the
	// file in one round trip and leaves what is below; a Delete of "a" as
	// a directory then removes that, and "ab/x" (not below "a"
	// component-wise) stays.
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the file a survived its delete: %v", err)
	}
	if _, err := s.Load(ctx, "a/c"); err != nil {
		t.Errorf("deleting the file a removed a/c: %v", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "a") || s.Exists(ctx, "a/c") {
		t.Error("a or a/c survived the delete of a")
	}
	if _, err := s.Load(ctx, "ab/x"); err != nil {
		t.Errorf("ab/x was deleted with a: %v", err)
	}
	// Deleting what is not there is not an error.
	if err := s.Delete(ctx, "no/such/key"); err != nil {
		t.Errorf("delete of a missing key: %v", err)
	}
	if err := s.Delete(ctx, ""); err == nil {
		t.Error("delete of the root was accepted")
	}
}

func TestList(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	ctx := ctxT(t)
	for _, k := range []string{
		"certs/acme/example.com/example.com.crt",
		"certs/acme/example.com/example.com.key",
		"certs/acme/other.org/other.org.crt",
		"certs/zerossl/x.crt",
		"ocsp/staple",
		"top",
	} {
		mustStore(t, s, k, "v")
	}
	check := func(prefix string, recursive bool, want ...string) {
		t.Helper()
		got, err := s.List(ctx, prefix, recursive)
		if err != nil {
			t.Fatalf("List(%q, %v): %v", prefix, recursive, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("List(%q, %v)\n got %q\nwant %q", prefix, recursive, got, want)
		}
	}
	check("certs", false, "certs/acme", "certs/zerossl")
	check("certs/acme", false, "certs/acme/example.com", "certs/acme/other.org")
	check("certs", true,
		"certs/acme", "certs/acme/example.com",
		"certs/acme/example.com/example.com.crt", "certs/acme/example.com/example.com.key",
		"certs/acme/other.org", "certs/acme/other.org/other.org.crt",
		"certs/zerossl", "certs/zerossl/x.crt")
	check("", false, "certs", "ocsp", "top")
	check("certs/acme/example.com", false, "certs/acme/example.com/example.com.crt", "certs/acme/example.com/example.com.key")
	check("top", false) // a file has no children
	if _, err := s.List(ctx, "nope", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing prefix: want fs.ErrNotExist, got %v", err)
	}
	if _, err := s.List(ctx, "cert", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List(\"cert\") matched certs/: %v", err)
	}
}

// Glob characters in keys and in the key prefix are matched literally.
func TestGlobCharactersAreLiteral(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	ctx := ctxT(t)
	for _, k := range []string{`g/[ab]*?/f1`, `g/a*?/f2`, `g/b/f3`, `g/x\y/f4`, `g/xy/f5`, `g/*/f6`} {
		mustStore(t, s, k, "v")
	}
	for prefix, want := range map[string][]string{
		`g/[ab]*?`: {`g/[ab]*?/f1`},
		`g/*`:      {`g/*/f6`},
		`g/x\y`:    {`g/x\y/f4`},
	} {
		got, err := s.List(ctx, prefix, true)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q) = %q, %v; want %q", prefix, got, err, want)
		}
	}
	if s.Exists(ctx, `g/?`) {
		t.Error(`Exists("g/?") matched by glob`)
	}
	if err := s.Delete(ctx, `g/*`); err != nil {
		t.Fatal(err)
	}
	all, _ := s.List(ctx, "g", false)
	if want := []string{`g/[ab]*?`, `g/a*?`, `g/b`, `g/x\y`, `g/xy`}; !reflect.DeepEqual(all, want) {
		t.Errorf(`after Delete("g/*"): %q, want %q`, all, want)
	}

	// Two storages whose prefixes differ only by glob characters do not see
	// each other's keys.
	star := newStorage(t, r.Addr, func(s *Storage) { s.KeyPrefix = "p*" })
	plain := newStorage(t, r.Addr, func(s *Storage) { s.KeyPrefix = "px" })
	mustStore(t, plain, "k/1", "v")
	if _, err := star.List(ctx, "k", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("prefix p* saw the keys of prefix px: %v", err)
	}
	if star.Exists(ctx, "k") {
		t.Error("prefix p* sees px's directory")
	}
}

func TestLockMutualExclusionAcrossInstances(t *testing.T) {
	r := cluster.StartRedis(t)
	retries := make(chan struct{}, 100)
	a := newStorage(t, r.Addr)
	b := newStorage(t, r.Addr, func(s *Storage) {
		s.onRetry = func() {
			select {
			case retries <- struct{}{}:
			default:
			}
		}
	})
	if a.client == b.client {
		t.Fatal("the two instances share a client; the test needs two")
	}
	ctx := ctxT(t)
	if err := a.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "job"); ok || err != nil {
		t.Fatalf("TryLock while held elsewhere: %v %v", ok, err)
	}

	events := make(chan string, 10)
	locked := make(chan error, 1)
	go func() {
		err := b.Lock(ctx, "job")
		events <- "b locked"
		locked <- err
	}()
	// B is waiting: it has tried and failed three times.
	for i := 0; i < 3; i++ {
		<-retries
	}
	events <- "a unlocks"
	if err := a.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	if first, second := <-events, <-events; first != "a unlocks" || second != "b locked" {
		t.Fatalf("order: %s, %s", first, second)
	}
	// Now A waits for B.
	if ok, _ := a.TryLock(ctx, "job"); ok {
		t.Fatal("A got the lock B holds")
	}
	if err := b.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryLock(ctx, "job"); !ok || err != nil {
		t.Fatalf("A could not lock after B unlocked: %v %v", ok, err)
	}
	_ = a.Unlock(ctx, "job")

	// A cancelled context ends the wait.
	_ = a.Lock(ctx, "held")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Lock(cctx, "held"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled context: %v", err)
	}
}

// Read-modify-write under the lock from two instances and many goroutines
// loses no update.
func TestLockSerializesReadModifyWrite(t *testing.T) {
	r := cluster.StartRedis(t)
	insts := []*Storage{newStorage(t, r.Addr), newStorage(t, r.Addr)}
	ctx := ctxT(t)
	mustStore(t, insts[0], "counter", "0")
	const workers, rounds = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*rounds)
	for _, s := range insts {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds; i++ {
					if err := s.Lock(ctx, "counter"); err != nil {
						errs <- err
						return
					}
					b, err := s.Load(ctx, "counter")
					if err == nil {
						n, _ := strconv.Atoi(string(b))
						err = s.Store(ctx, "counter", []byte(strconv.Itoa(n+1)))
					}
					if uerr := s.Unlock(ctx, "counter"); err == nil {
						err = uerr
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b, _ := insts[1].Load(ctx, "counter")
	if string(b) != strconv.Itoa(2*workers*rounds) {
		t.Fatalf("counter = %s, want %d: an update was lost", b, 2*workers*rounds)
	}
}

// crash makes s behave like a killed process: its refreshers stop and it
// forgets its locks without releasing them.
func crash(s *Storage) {
	for _, h := range s.held.takeAll() {
		h.stopRefresh()
	}
}

// freeze stops s's refreshers but keeps its tokens, like a process paused
// for longer than the lease (GC pause, partition) that later resumes.
func freeze(s *Storage) {
	s.held.mu.Lock()
	hs := make([]*heldLock, 0, len(s.held.locks))
	for _, h := range s.held.locks {
		hs = append(hs, h)
	}
	s.held.mu.Unlock()
	for _, h := range hs {
		h.stopRefresh()
	}
}

func TestLockOutlivesItsTTLWhileHeldAndExpiresWhenTheHolderDies(t *testing.T) {
	r := cluster.StartRedis(t)
	const ttl = 400 * time.Millisecond
	short := func(s *Storage) { s.LockTTL = caddy.Duration(ttl) }
	a := newStorage(t, r.Addr, short)
	b := newStorage(t, r.Addr, short)
	ctx := ctxT(t)
	if err := a.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	// Held well past its TTL: the refresher keeps it.
	held := time.Now()
	for time.Since(held) < 4*ttl {
		if ok, err := b.TryLock(ctx, "job"); ok || err != nil {
			t.Fatalf("B took the lock A still holds (%v after locking): %v", time.Since(held), err)
		}
		time.Sleep(ttl / 4)
	}
	// A dies: B gets the lock once the lease runs out, without any unlock.
	crash(a)
	if err := b.Lock(ctx, "job"); err != nil {
		t.Fatalf("B never got the dead holder's lock: %v", err)
	}
	_ = b.Unlock(ctx, "job")
}

func TestUnlockByNonHolderDoesNotRelease(t *testing.T) {
	r := cluster.StartRedis(t)
	const ttl = 300 * time.Millisecond
	short := func(s *Storage) { s.LockTTL = caddy.Duration(ttl) }
	a := newStorage(t, r.Addr, short)
	b := newStorage(t, r.Addr, short)
	c := newStorage(t, r.Addr, short)
	ctx := ctxT(t)

	// An instance that never locked cannot unlock.
	if err := a.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, "job"); err != nil {
		t.Fatalf("unlock by a non-holder: %v", err)
	}
	if ok, _ := c.TryLock(ctx, "job"); ok {
		t.Fatal("a non-holder's Unlock released the lock")
	}

	// A holder whose lease expired cannot release its successor's lock.
	freeze(a)
	if err := b.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx, "job"); err != nil {
		t.Fatalf("stale unlock: %v", err)
	}
	if ok, _ := c.TryLock(ctx, "job"); ok {
		t.Fatal("the expired holder's Unlock released the new holder's lock")
	}
	token, err := b.client.Get(ctx, b.lockNS+"job").Result()
	if err != nil || token != b.held.locks["job"].token {
		t.Fatalf("lock key holds %q (%v), want B's token", token, err)
	}
	if err := b.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.TryLock(ctx, "job"); !ok {
		t.Fatal("the holder's Unlock did not release")
	}
	_ = c.Unlock(ctx, "job")
}

func TestCleanupReleasesHeldLocks(t *testing.T) {
	r := cluster.StartRedis(t)
	a := newStorage(t, r.Addr)
	b := newStorage(t, r.Addr)
	ctx := ctxT(t)
	if err := a.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	_ = a.Cleanup() // a config unload or a clean shutdown
	if ok, err := b.TryLock(ctx, "job"); !ok || err != nil {
		t.Fatalf("lock still held after its holder's cleanup: %v %v", ok, err)
	}
	_ = b.Unlock(ctx, "job")
}

// Instances with the same connection settings share one client (config
// reloads do not open new pools); the last Cleanup closes it.
func TestClientIsSharedAndReleased(t *testing.T) {
	r := cluster.StartRedis(t)
	provision := func() *Storage {
		s := &Storage{Address: r.Addr, KeyPrefix: "shared-" + t.Name()}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := s.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := provision(), provision()
	if s1.client != s2.client {
		t.Fatal("identical configurations got two clients")
	}
	ctx := ctxT(t)
	_ = s1.Cleanup()
	if err := s2.Store(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("the client was closed while still in use: %v", err)
	}
	_ = s2.Cleanup()
	if err := s2.client.Ping(ctx).Err(); err == nil {
		t.Fatal("the client is still open after the last cleanup")
	}
}

func TestPasswordFromEnvironment(t *testing.T) {
	const secret = "s3cret-pw-value"
	r := cluster.StartRedis(t, "--requirepass", secret)
	t.Setenv("IDV_REDIS_TEST_PASSWORD", secret)
	s := newStorage(t, r.Addr, func(s *Storage) { s.Password = "{env.IDV_REDIS_TEST_PASSWORD}" })
	ctx := ctxT(t)
	mustStore(t, s, "k", "v")
	if s.Password != "{env.IDV_REDIS_TEST_PASSWORD}" {
		t.Error("provisioning wrote the resolved secret back into the config")
	}

	t.Setenv("IDV_REDIS_TEST_PASSWORD", "wrong-password")
	bad := &Storage{Address: r.Addr, Password: "{env.IDV_REDIS_TEST_PASSWORD}", poolSalt: "bad"}
	pctx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	defer cancel()
	err := bad.Provision(pctx)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(bad.String(), "wrong-password") {
		t.Fatalf("the password leaked into %q", err)
	}
}

// An ACL user from the environment, and a literal password with braces
// (not a placeholder: kept as it is).
func TestACLUserAndLiteralBracedPassword(t *testing.T) {
	r := cluster.StartRedis(t, "--user", "default", "off", "--user", "idv", "on", ">a{b}c", "~*", "&*", "+@all")
	t.Setenv("IDV_REDIS_TEST_USER", "idv")
	s := newStorage(t, r.Addr, func(s *Storage) { s.Username = "{env.IDV_REDIS_TEST_USER}"; s.Password = "a{b}c" })
	mustStore(t, s, "k", "v")
	if err := s.Lock(ctxT(t), "l"); err != nil {
		t.Fatalf("lock as an ACL user: %v", err)
	}
	if err := s.Unlock(ctxT(t), "l"); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableServerFailsProvision(t *testing.T) {
	port := cluster.FreePort(t) // nothing listens there
	s := &Storage{Address: fmt.Sprintf("127.0.0.1:%d", port), Timeout: caddy.Duration(time.Second), poolSalt: "unreachable"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := s.Provision(ctx); err == nil {
		t.Fatal("provision succeeded with no server")
	}
}

func TestCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`idv_redis {
		address    redis.internal:6380
		username   {env.REDIS_USERNAME}
		password   {env.REDIS_PASSWORD}
		db         2
		key_prefix cluster1
		tls
		timeout    3s
		lock_ttl   20s
	}`)
	var s Storage
	if err := s.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Storage{Address: "redis.internal:6380", Username: "{env.REDIS_USERNAME}", Password: "{env.REDIS_PASSWORD}",
		DB: 2, KeyPrefix: "cluster1", TLS: true, Timeout: caddy.Duration(3 * time.Second), LockTTL: caddy.Duration(20 * time.Second)}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v\nwant %+v", s, want)
	}

	var short Storage
	if err := short.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`idv_redis 10.0.0.1:6379`)); err != nil || short.Address != "10.0.0.1:6379" {
		t.Fatalf("inline address: %+v %v", short, err)
	}
	for _, bad := range []string{
		"idv_redis {\n db -1\n}", "idv_redis {\n db x\n}", "idv_redis {\n timeout soon\n}",
		"idv_redis {\n tls yes\n}", "idv_redis {\n bogus 1\n}", "idv_redis a b",
	} {
		var s Storage
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}

	// The global option adapts to the module, secrets still as placeholders.
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	storage idv_redis {
		address 127.0.0.1:6379
		password {env.REDIS_PASSWORD}
	}
}
:8080 {
	respond ok
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Storage map[string]any `json:"storage"`
	}
	if err := json.Unmarshal(cfg, &out); err != nil {
		t.Fatal(err)
	}
	if out.Storage["module"] != "idv_redis" || out.Storage["password"] != "{env.REDIS_PASSWORD}" {
		t.Fatalf("adapted storage: %v", out.Storage)
	}
}

// The storage satisfies what certmagic's startup check does with it.
func TestCertmagicStorageCheckRoundTrip(t *testing.T) {
	r := cluster.StartRedis(t)
	s := newStorage(t, r.Addr)
	var st certmagic.Storage = s
	ctx := ctxT(t)
	val := bytes.Repeat([]byte{7}, 10*1024)
	if err := st.Store(ctx, "rw_test_1", val); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(ctx, "rw_test_1")
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("load: %v", err)
	}
	if err := st.Delete(ctx, "rw_test_1"); err != nil {
		t.Fatal(err)
	}
	if st.Exists(ctx, "rw_test_1") {
		t.Fatal("still exists")
	}
}
