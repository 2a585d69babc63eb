package redisstorage

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Storage{})
}

// Defaults.
const (
	DefaultAddress   = "127.0.0.1:6379"
	DefaultKeyPrefix = "caddy"
	DefaultTimeout   = 5 * time.Second
	DefaultLockTTL   = 10 * time.Second
)

const (
	scanCount   = 1000                   // SCAN COUNT hint
	minLockPoll = 10 * time.Millisecond  // first retry of a busy lock
	maxLockPoll = 250 * time.Millisecond // longest wait between retries
)

// Storage is a certmagic.Storage backed by Redis (module ID
// caddy.storage.idv_redis). See the package documentation for the key
// layout and the lock algorithm.
type Storage struct {
	// Address is the Redis server's host:port. Default: 127.0.0.1:6379.
	Address string `json:"address,omitempty"`
	// Username is the ACL user (Redis 6+). Placeholders such as
	// {env.REDIS_USERNAME} are resolved at provision.
	Username string `json:"username,omitempty"`
	// Password authenticates the connection. Use a placeholder such as
	// {env.REDIS_PASSWORD} so the secret stays out of the config.
	Password string `json:"password,omitempty"`
	// DB is the Redis database number. Default: 0.
	DB int `json:"db,omitempty"`
	// KeyPrefix starts every Redis key this module writes, so several
	// clusters (or other applications) can share a server. Default: caddy.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// TLS connects with TLS (server certificate verified against the
	// system roots and the address's host name).
	TLS bool `json:"tls,omitempty"`
	// Timeout bounds dialing and each read and write. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// LockTTL is the lease of a lock: a holder refreshes it every third of
	// it, and a holder that stops (crash, partition) loses the lock after at
	// most this long. Default: 10s.
	LockTTL caddy.Duration `json:"lock_ttl,omitempty"`

	client   *redis.Client
	release  func()
	logger   *zap.Logger
	addr     string // resolved Address
	dataNS   string // "<prefix>:data:"
	lockNS   string // "<prefix>:lock:"
	indexNS  string // "<prefix>:index:"
	probeKey string // "<prefix>:probe"
	lockTTL  time.Duration
	timeout  time.Duration
	poolSalt string // tests: a private client per instance
	onRetry  func() // tests: called after each failed attempt of Lock

	held *lockTable
}

// lockTable is the locks this instance holds, by name, and the gates that
// admit one holder per name in this process.
//
// certmagic's Unlock names a lock, not an acquisition, so two holders of
// one name in one process could not be told apart: a holder whose lease
// expired (a stalled refresh) would release the lock its successor in this
// process took. The gate makes the successor wait for the old holder's
// Unlock instead; between processes, the token (compare-and-delete) keeps
// an old holder from releasing the new one's lock.
type lockTable struct {
	mu    sync.Mutex
	locks map[string]*heldLock
	gates map[string]chan struct{} // closed when the name's holder leaves
}

// enter waits until no other caller in this process holds name.
func (t *lockTable) enter(ctx context.Context, name string) error {
	for {
		t.mu.Lock()
		ch, busy := t.gates[name]
		if !busy {
			t.gates[name] = make(chan struct{})
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// tryEnter is enter without waiting.
func (t *lockTable) tryEnter(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, busy := t.gates[name]; busy {
		return false
	}
	t.gates[name] = make(chan struct{})
	return true
}

// leave lets the next caller waiting for name in.
func (t *lockTable) leave(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch, ok := t.gates[name]; ok {
		delete(t.gates, name)
		close(ch)
	}
}

func (t *lockTable) put(name string, h *heldLock) (old *heldLock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old = t.locks[name]
	t.locks[name] = h
	return old
}

func (t *lockTable) take(name string) *heldLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.locks[name]
	delete(t.locks, name)
	return h
}

func (t *lockTable) takeAll() map[string]*heldLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := t.locks
	t.locks = map[string]*heldLock{}
	return all
}

// heldLock is a lock this instance holds, with its lease refresher.
type heldLock struct {
	token string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (h *heldLock) stopRefresh() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}

// CaddyModule returns the Caddy module information.
func (Storage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.idv_redis",
		New: func() caddy.Module { return new(Storage) },
	}
}

// pooledClient is the shared value in clients.
type pooledClient struct{ *redis.Client }

func (c pooledClient) Destruct() error { return c.Close() }

// clients shares one go-redis client per connection configuration across
// config reloads.
var clients = caddy.NewUsagePool()

// Provision resolves placeholders, applies defaults and connects.
func (s *Storage) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	// Only known placeholders ({env.*}, {system.*}, ...) are replaced, so a
	// password that happens to contain braces is kept as it is.
	repl := caddy.NewReplacer()
	addr := repl.ReplaceKnown(s.Address, "")
	user := repl.ReplaceKnown(s.Username, "")
	pass := repl.ReplaceKnown(s.Password, "")
	prefix := repl.ReplaceKnown(s.KeyPrefix, "")
	if addr == "" {
		addr = DefaultAddress
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("idv_redis address %q: want host:port: %v", addr, err)
	}
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if s.DB < 0 {
		return fmt.Errorf("idv_redis db must not be negative, got %d", s.DB)
	}
	s.timeout = time.Duration(s.Timeout)
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.lockTTL = time.Duration(s.LockTTL); s.lockTTL <= 0 {
		s.lockTTL = DefaultLockTTL
	}
	if s.lockTTL < 30*time.Millisecond {
		return fmt.Errorf("idv_redis lock_ttl must be at least 30ms, got %s", s.lockTTL)
	}
	s.addr = addr
	s.dataNS = prefix + ":data:"
	s.lockNS = prefix + ":lock:"
	s.indexNS = prefix + ":index:"
	s.probeKey = prefix + ":probe"
	s.held = &lockTable{locks: map[string]*heldLock{}, gates: map[string]chan struct{}{}}

	// The pool key covers everything that shapes a connection; the password
	// enters it only hashed.
	pw := sha256.Sum256([]byte(pass))
	poolKey := strings.Join([]string{addr, user, hex.EncodeToString(pw[:]), strconv.Itoa(s.DB),
		strconv.FormatBool(s.TLS), s.timeout.String(), s.poolSalt}, "\x00")
	opts := &redis.Options{
		Addr:                     addr,
		Username:                 user,
		Password:                 pass,
		DB:                       s.DB,
		DialTimeout:              s.timeout,
		ReadTimeout:              s.timeout,
		WriteTimeout:             s.timeout,
		ContextTimeoutEnabled:    true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if s.TLS {
		host, _, _ := net.SplitHostPort(addr)
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	val, loaded, err := clients.LoadOrNew(poolKey, func() (caddy.Destructor, error) {
		return pooledClient{redis.NewClient(opts)}, nil
	})
	if err != nil {
		return err
	}
	s.client = val.(pooledClient).Client
	s.release = func() { _, _ = clients.Delete(poolKey) }

	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(pctx).Err(); err != nil {
		s.release()
		s.release = nil
		return fmt.Errorf("idv_redis: connecting to %s (db %d): %w", addr, s.DB, err)
	}
	s.logger.Info("redis storage ready", zap.String("address", addr), zap.Int("db", s.DB),
		zap.String("key_prefix", prefix), zap.Bool("tls", s.TLS), zap.Bool("auth", pass != ""),
		zap.Bool("shared_client", loaded), zap.Duration("lock_ttl", s.lockTTL))
	return nil
}

// Cleanup releases the locks this instance still holds and its share of
// the client.
func (s *Storage) Cleanup() error {
	if s.held == nil {
		return nil // never provisioned
	}
	for name, h := range s.held.takeAll() {
		h.stopRefresh()
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		if _, err := unlockScript.Run(ctx, s.client, []string{s.lockNS + name}, h.token).Result(); err != nil {
			s.logger.Warn("releasing a lock at cleanup failed; it expires by itself", zap.String("lock", name), zap.Error(err))
		}
		cancel()
		s.held.leave(name)
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
	return nil
}

// CertMagicStorage implements caddy.StorageConverter.
func (s *Storage) CertMagicStorage() (certmagic.Storage, error) { return s, nil }

// String identifies the storage in certmagic's logs (never the password).
func (s *Storage) String() string {
	return fmt.Sprintf("idv_redis(%s db=%d prefix=%s)", s.addr, s.DB, strings.TrimSuffix(s.dataNS, ":data:"))
}

// cleanKey normalizes a certmagic key: no leading, trailing or doubled
// slashes. The root is "".
func cleanKey(key string) string {
	key = path.Clean("/" + key)
	return strings.TrimPrefix(key, "/")
}

func (s *Storage) dataKey(key string) string { return s.dataNS + cleanKey(key) }

// escapeGlob escapes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// childPattern matches every data key strictly below key.
func (s *Storage) childPattern(key string) string {
	key = cleanKey(key)
	if key == "" {
		return escapeGlob(s.dataNS) + "*"
	}
	return escapeGlob(s.dataNS+key+"/") + "*"
}

var errStopScan = errors.New("stop scan")

// scan calls fn with every batch of keys matching pattern.
func (s *Storage) scan(ctx context.Context, pattern string, fn func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := s.client.Scan(ctx, cursor, pattern, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func notExist(op, key string) error {
	return &fs.PathError{Op: op, Path: key, Err: fs.ErrNotExist}
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if cleanKey(key) == "" {
		return fmt.Errorf("idv_redis: cannot store at the root key")
	}
	if value == nil {
		value = []byte{}
	}
	err := s.client.HSet(ctx, s.dataKey(key), "value", value, "modified", time.Now().UTC().Format(time.RFC3339Nano)).Err()
	if err != nil {
		return fmt.Errorf("idv_redis: storing %s: %w", key, err)
	}
	return nil
}

// Load implements certmagic.Storage; a missing key is fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.client.HGet(ctx, s.dataKey(key), "value").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, notExist("load", key)
	}
	if err != nil {
		return nil, fmt.Errorf("idv_redis: loading %s: %w", key, err)
	}
	return b, nil
}

// Delete implements certmagic.Storage: it removes key and every key below
// it. A missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	k := cleanKey(key)
	if k == "" {
		return fmt.Errorf("idv_redis: refusing to delete the storage root")
	}
	n, err := s.client.Unlink(ctx, s.dataNS+k).Result()
	if err != nil {
		return fmt.Errorf("idv_redis: deleting %s: %w", key, err)
	}
	if n > 0 {
		// It was a file, and a file has nothing below it (Store never
		// writes below a file in certmagic's layout): one round trip.
		return nil
	}
	err = s.scan(ctx, s.childPattern(k), func(keys []string) error {
		return s.client.Unlink(ctx, keys...).Err()
	})
	if err != nil {
		return fmt.Errorf("idv_redis: deleting below %s: %w", key, err)
	}
	return nil
}

// isDir reports whether some key lies below key.
func (s *Storage) isDir(ctx context.Context, key string) (bool, error) {
	found := false
	err := s.scan(ctx, s.childPattern(key), func([]string) error {
		found = true
		return errStopScan
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return found, err
}

// Exists implements certmagic.Storage: key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	if cleanKey(key) != "" {
		n, err := s.client.Exists(ctx, s.dataKey(key)).Result()
		if err != nil {
			return false
		}
		if n > 0 {
			return true
		}
	}
	dir, err := s.isDir(ctx, key)
	return err == nil && dir
}

// List implements certmagic.Storage. Like the file system storage it
// returns full keys: the direct children of prefix (files and directories),
// or with recursive every file and directory below it. A prefix with nothing
// below it is fs.ErrNotExist, unless it is a file.
func (s *Storage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	p := cleanKey(prefix)
	seen := map[string]struct{}{}
	err := s.scan(ctx, s.childPattern(p), func(keys []string) error {
		for _, rk := range keys {
			rest := strings.TrimPrefix(rk, s.dataNS)
			if p != "" {
				rest = strings.TrimPrefix(rest, p+"/")
			}
			parts := strings.Split(rest, "/")
			if !recursive {
				parts = parts[:1]
			}
			cur := p
			for _, part := range parts {
				cur = path.Join(cur, part)
				seen[cur] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("idv_redis: listing %s: %w", prefix, err)
	}
	if len(seen) == 0 {
		if p != "" {
			if n, err := s.client.Exists(ctx, s.dataNS+p).Result(); err == nil && n > 0 {
				return []string{}, nil
			}
		}
		return nil, notExist("list", prefix)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	k := cleanKey(key)
	if k != "" {
		pipe := s.client.Pipeline()
		mod := pipe.HGet(ctx, s.dataNS+k, "modified")
		size := pipe.HStrLen(ctx, s.dataNS+k, "value")
		_, err := pipe.Exec(ctx)
		switch {
		case err == nil:
			t, _ := time.Parse(time.RFC3339Nano, mod.Val())
			return certmagic.KeyInfo{Key: key, Modified: t, Size: size.Val(), IsTerminal: true}, nil
		case !errors.Is(err, redis.Nil):
			return certmagic.KeyInfo{}, fmt.Errorf("idv_redis: stat %s: %w", key, err)
		}
	}
	dir, err := s.isDir(ctx, k)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("idv_redis: stat %s: %w", key, err)
	}
	if !dir {
		return certmagic.KeyInfo{}, notExist("stat", key)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// unlockScript deletes the lock only when it holds the caller's token.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// refreshScript extends the lock's lease only when it holds the caller's
// token.
var refreshScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

func newToken() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// Lock implements certmagic.Locker: it blocks until this instance holds
// the lock named name or ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	if err := s.held.enter(ctx, name); err != nil {
		return err
	}
	wait := minLockPoll
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		ok, err := s.acquire(ctx, name)
		if err != nil {
			s.held.leave(name)
			return err
		}
		if ok {
			return nil
		}
		if s.onRetry != nil {
			s.onRetry()
		}
		// Jitter spreads the retries of several waiters.
		timer.Reset(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			s.held.leave(name)
			return ctx.Err()
		case <-timer.C:
		}
		wait = min(wait*2, maxLockPoll, s.lockTTL/2)
	}
}

// TryLock implements certmagic.TryLocker: one attempt, no waiting.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !s.held.tryEnter(name) {
		return false, nil
	}
	ok, err := s.acquire(ctx, name)
	if !ok || err != nil {
		s.held.leave(name)
	}
	return ok, err
}

// acquire is one attempt at the Redis lock, by a caller that passed the
// gate; on success it starts the lease refresher.
func (s *Storage) acquire(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	token := newToken()
	ok, err := s.client.SetNX(ctx, s.lockNS+name, token, s.lockTTL).Result()
	if err != nil {
		return false, fmt.Errorf("idv_redis: locking %s: %w", name, err)
	}
	if !ok {
		return false, nil
	}
	h := &heldLock{token: token, stop: make(chan struct{}), done: make(chan struct{})}
	if old := s.held.put(name, h); old != nil {
		// This instance held the lock before and lost its lease; that
		// refresher has nothing left to refresh.
		old.stopRefresh()
	}
	go s.keepAlive(name, h)
	return true, nil
}

// keepAlive extends the lease of a held lock until Unlock stops it or the
// lock is found to belong to someone else.
func (s *Storage) keepAlive(name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
		n, err := refreshScript.Run(ctx, s.client, []string{s.lockNS + name}, h.token, s.lockTTL.Milliseconds()).Int()
		cancel()
		switch {
		case err != nil:
			// Try again at the next tick; the lease may still be valid.
			s.logger.Warn("refreshing a lock failed", zap.String("lock", name), zap.Error(err))
		case n == 0:
			s.logger.Error("lock lost: its lease expired before it was refreshed", zap.String("lock", name))
			return
		}
	}
}

// Unlock implements certmagic.Locker. It releases the lock only if this
// instance holds it (compare-and-delete on the token); unlocking a lock held
// elsewhere, or one whose lease has expired, changes nothing.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	h := s.held.take(name)
	if h == nil {
		s.logger.Debug("unlock of a lock this instance does not hold", zap.String("lock", name))
		return nil
	}
	h.stopRefresh()
	defer s.held.leave(name)
	n, err := unlockScript.Run(ctx, s.client, []string{s.lockNS + name}, h.token).Int()
	if err != nil {
		return fmt.Errorf("idv_redis: unlocking %s: %w", name, err)
	}
	if n == 0 {
		s.logger.Warn("unlock: the lock had already expired or been taken over", zap.String("lock", name))
	}
	return nil
}

// ProbeWrite implements session.WriteProber: one SET with a short TTL, so
// a server that is down, read-only (a replica) or out of memory is found
// before a billable provider call rather than after it.
func (s *Storage) ProbeWrite(ctx context.Context) error {
	if err := s.client.Set(ctx, s.probeKey, "1", 10*time.Second).Err(); err != nil {
		return fmt.Errorf("idv_redis: probing %s: %w", s.addr, err)
	}
	return nil
}

func (s *Storage) indexKey(index string) string { return s.indexNS + cleanKey(index) }

// StoreIndexed implements session.IndexedStorage: the values (as Store
// writes them) and the index entry (a sorted set scored by unix
// milliseconds) in one MULTI/EXEC round trip.
func (s *Storage) StoreIndexed(ctx context.Context, keys []string, values [][]byte, index, member string, at time.Time) error {
	if len(keys) != len(values) {
		return fmt.Errorf("idv_redis: %d keys for %d values", len(keys), len(values))
	}
	for _, k := range keys {
		if cleanKey(k) == "" {
			return fmt.Errorf("idv_redis: cannot store at the root key")
		}
	}
	mod := time.Now().UTC().Format(time.RFC3339Nano)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			v := values[i]
			if v == nil {
				v = []byte{}
			}
			p.HSet(ctx, s.dataKey(k), "value", v, "modified", mod)
		}
		p.ZAdd(ctx, s.indexKey(index), redis.Z{Score: float64(at.UnixMilli()), Member: member})
		return nil
	})
	if err != nil {
		return fmt.Errorf("idv_redis: storing %d keys and indexing them: %w", len(keys), err)
	}
	return nil
}

// IndexDue implements session.IndexedStorage (ZRANGE BYSCORE ... LIMIT).
func (s *Storage) IndexDue(ctx context.Context, index string, before time.Time, limit int) ([]string, error) {
	out, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.indexKey(index), Start: "-inf", Stop: "(" + strconv.FormatInt(before.UnixMilli(), 10),
		ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("idv_redis: reading index %s: %w", index, err)
	}
	return out, nil
}

// IndexRemove implements session.IndexedStorage.
func (s *Storage) IndexRemove(ctx context.Context, index string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	if err := s.client.ZRem(ctx, s.indexKey(index), args...).Err(); err != nil {
		return fmt.Errorf("idv_redis: updating index %s: %w", index, err)
	}
	return nil
}

// UnmarshalCaddyfile sets up the storage from Caddyfile tokens:
//
//	storage idv_redis [<address>] {
//		address    <host:port>
//		username   <user>
//		password   <password>
//		db         <n>
//		key_prefix <prefix>
//		tls
//		timeout    <duration>
//		lock_ttl   <duration>
//	}
func (s *Storage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		s.Address = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	one := func() (string, error) {
		if !d.NextArg() {
			return "", d.ArgErr()
		}
		v := d.Val()
		if d.NextArg() {
			return "", d.ArgErr()
		}
		return v, nil
	}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "address", "username", "password", "key_prefix":
			v, err := one()
			if err != nil {
				return err
			}
			switch opt {
			case "address":
				s.Address = v
			case "username":
				s.Username = v
			case "password":
				s.Password = v
			case "key_prefix":
				s.KeyPrefix = v
			}
		case "db":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("db must be a non-negative number, got %q", v)
			}
			s.DB = n
		case "tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.TLS = true
		case "timeout", "lock_ttl":
			v, err := one()
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s must be a positive duration, got %q", opt, v)
			}
			if opt == "timeout" {
				s.Timeout = caddy.Duration(dur)
			} else {
				s.LockTTL = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized idv_redis option %q", opt)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner      = (*Storage)(nil)
	_ caddy.CleanerUpper     = (*Storage)(nil)
	_ caddy.StorageConverter = (*Storage)(nil)
	_ caddyfile.Unmarshaler  = (*Storage)(nil)
	_ certmagic.Storage      = (*Storage)(nil)
	_ certmagic.TryLocker    = (*Storage)(nil)
)
