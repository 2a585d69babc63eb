// Package session stores verification sessions in Caddy's configured storage
// (certmagic.Storage), so they survive restarts and every instance sharing the
// storage (a file system, Redis, ...) sees the same sessions.
//
// Every read is a direct key lookup: a session by its uniqueId, or by the
// provider's reference (interviewId, sessionId) through a small index record.
// Nothing scans storage, so lookups do not slow down as sessions accumulate.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// Errors returned by the store. A uniqueId given explicitly that is unknown,
// expired or malformed is the client's mistake (400); a session cookie that
// names no live session means the caller has no session (401).
var (
	ErrMalformedID = errors.New("uniqueId is not a valid UUID")
	ErrNotFound    = errors.New("no session with that uniqueId")
	ErrExpired     = errors.New("the session has expired")
	// ErrUnavailable wraps every failure of the storage itself (Redis
	// down, disk read-only, ...), as opposed to "no such session": the
	// core answers it with 503 and Retry-After, never with a new session.
	ErrUnavailable = errors.New("session storage is unavailable")
)

// storageError is a failure of the storage: errors.Is(err, ErrUnavailable)
// holds, and the cause stays for the logs.
type storageError struct {
	op  string
	err error
}

func (e *storageError) Error() string   { return e.op + ": " + e.err.Error() }
func (e *storageError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

func unavailable(op string, err error) error { return &storageError{op: op, err: err} }

// Event is one provider notification recorded on a session.
type Event struct {
	// Key identifies the delivery for deduplication (a retried delivery of
	// the same notification has the same key).
	Key        string    `json:"key"`
	Status     string    `json:"status"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Session is one verification session. Token is the provider credential of
// this session (Incode session token, Regula ephemeral token): it is stored
// here and handed only to the browser that owns the session.
type Session struct {
	UniqueID string `json:"uniqueId"`
	Provider string `json:"provider"`
	Token    string `json:"token,omitempty"`
	Ref      string `json:"ref,omitempty"`
	URL      string `json:"url,omitempty"`
	Status   string `json:"status,omitempty"`
	Score    string `json:"score,omitempty"`
	// Result is the provider-neutral outcome: "verified", "failed" or empty
	// while the verification is in progress.
	Result    string            `json:"result,omitempty"`
	Events    []Event           `json:"events,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	ExpiresAt time.Time         `json:"expiresAt"`
}

// Expired reports whether the session is past its expiry at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// HasEvent reports whether an event with key was already recorded.
func (s *Session) HasEvent(key string) bool {
	for _, e := range s.Events {
		if e.Key == key {
			return true
		}
	}
	return false
}

// Store is what handlers use; tests can supply their own.
type Store interface {
	// Create stores a new session and indexes its Ref.
	Create(ctx context.Context, s *Session) error
	// Load returns the session with the given uniqueId; it validates the id
	// before touching storage and refuses expired sessions (ErrExpired).
	Load(ctx context.Context, uniqueID string) (*Session, error)
	// LoadByRef returns the session whose provider reference is ref,
	// expired or not (webhooks may arrive late).
	LoadByRef(ctx context.Context, ref string) (*Session, error)
	// Update applies fn to the stored session under a storage lock and saves
	// it when fn reports a change.
	Update(ctx context.Context, uniqueID string, fn func(*Session) (changed bool, err error)) (*Session, error)
	// CreateOrUpdate is Update that first stores fresh, under the same
	// lock, when no session has its uniqueId.
	CreateOrUpdate(ctx context.Context, fresh *Session, fn func(*Session) (changed bool, err error)) (*Session, error)
}

// LogID is what logs say of a uniqueId: a short digest. The id itself
// resumes the session, so it is a credential and never logged.
func LogID(id string) string {
	sum := sha256.Sum256([]byte("caddy-idv session\x00" + id))
	return hex.EncodeToString(sum[:6])
}

// NewID returns a random UUIDv4.
func NewID() string { return uuid.NewString() }

// ValidID reports whether id is a canonical UUIDv4 as NewID makes them; only
// such ids reach storage keys.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	u, err := uuid.Parse(id)
	return err == nil && u.Version() == 4 && u.String() == id
}

// StorageStore keeps sessions in a certmagic.Storage under Namespace.
//
// The record layout is the same on every storage: the session at
// idv/<ns>/sessions/<uniqueId>.json, its index at idv/<ns>/refs/<hash>.
// On certmagic's file storage (Caddy's default) sessions live in one bbolt
// database instead, appended to a log with an index in memory and written
// with group commit (boltstore.go, groupcommit.go); on a storage implementing IndexedStorage (idv_redis) a
// session is written in one round trip with an expiry index that makes the
// sweep linear in the expired sessions; elsewhere with Storage.Store.
type StorageStore struct {
	Storage   certmagic.Storage
	Namespace string // e.g. "incode" or a hash of the handler's prefix
	Now       func() time.Time

	initOnce sync.Once
	initErr  error
	db       *bolt.DB     // certmagic.FileStorage
	gc       *groupCommit // its writer
	dbPath   string
	idx      *nsIndex       // the namespace's index in the database
	indexed  IndexedStorage // idv_redis
	probedAt atomic.Int64   // last successful write probe (unix nanos)
	probeMu  sync.Mutex     // one probe write at a time
	probing  *probeFlight   // the WriteProber probe in flight
}

// IndexedStorage is implemented by storages that can write several keys in
// one round trip and keep an ordered index (idv_redis: MULTI and a sorted
// set). The session store then keeps every session in an expiry index, so
// that the sweep reads only the sessions due, not the whole keyspace.
type IndexedStorage interface {
	// StoreIndexed stores values[i] at keys[i] and adds member to index
	// with the time at, atomically. keys may be empty.
	StoreIndexed(ctx context.Context, keys []string, values [][]byte, index, member string, at time.Time) error
	// IndexDue returns up to limit members of index whose time is before
	// before, earliest first.
	IndexDue(ctx context.Context, index string, before time.Time, limit int) ([]string, error)
	// IndexRemove removes members from index.
	IndexRemove(ctx context.Context, index string, members ...string) error
}

// WriteProber is implemented by storages that can tell cheaply whether a
// write would succeed now (idv_redis: a SET with a short TTL).
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}

func (st *StorageStore) init() error {
	st.initOnce.Do(func() {
		switch s := st.Storage.(type) {
		case *certmagic.FileStorage:
			var sdb *sharedDB
			if sdb, st.dbPath, st.initErr = openBolt(s); sdb != nil {
				st.db, st.gc = sdb.db, sdb.gc
				st.idx, st.initErr = sdb.index(st.Namespace)
			}
		case IndexedStorage:
			st.indexed = s
		}
	})
	if st.initErr != nil {
		return unavailable("opening session storage", st.initErr)
	}
	return nil
}

// Open prepares the store (on the file storage: opens the session
// database), so that a configuration error shows when the handler starts.
func (st *StorageStore) Open() error { return st.init() }

// Close releases what Open took.
func (st *StorageStore) Close() {
	if st.dbPath != "" {
		closeBolt(st.dbPath)
	}
}

func (st *StorageStore) expiryIndex() string { return path.Join("idv", st.Namespace, "expiry") }

// put stores the values (and, on an indexed storage, indexes the session's
// expiry) as one durable write.
func (st *StorageStore) put(ctx context.Context, s *Session, keys []string, values [][]byte) error {
	if err := st.init(); err != nil {
		return err
	}
	var err error
	switch {
	case st.db != nil:
		err = st.boltCreate(ctx, s, values[0])
	case st.indexed != nil:
		err = st.indexed.StoreIndexed(ctx, keys, values, st.expiryIndex(), s.UniqueID, s.ExpiresAt)
	default:
		for i, k := range keys {
			if err = st.Storage.Store(ctx, k, values[i]); err != nil {
				break
			}
		}
	}
	if err != nil {
		return unavailable("storing session", err)
	}
	return nil
}

// probeEvery bounds how often Writable writes a probe record on a storage
// that cannot probe itself cheaply.
const probeEvery = time.Second

// Writable reports whether a new session could be stored now; its error
// wraps ErrUnavailable. The core calls it before a provider call that
// bills a session, so that a storage outage bills nothing.
func (st *StorageStore) Writable(ctx context.Context) error {
	if p, ok := st.Storage.(WriteProber); ok {
		if err := st.probeShared(ctx, p); err != nil {
			return unavailable("probing session storage", err)
		}
		return nil
	}
	// A probe record, at most once per probeEvery while it succeeds, and
	// one at a time: the requests that find it due together wait for one
	// synced write instead of each writing its own.
	if time.Since(time.Unix(0, st.probedAt.Load())) < probeEvery {
		return nil
	}
	st.probeMu.Lock()
	defer st.probeMu.Unlock()
	if time.Since(time.Unix(0, st.probedAt.Load())) < probeEvery {
		return nil
	}
	if err := st.Storage.Store(ctx, path.Join("idv", st.Namespace, "probe"), []byte(st.now().Format(time.RFC3339Nano))); err != nil {
		return unavailable("probing session storage", err)
	}
	st.probedAt.Store(time.Now().UnixNano())
	return nil
}

// probeShared runs one ProbeWrite for the callers that arrive while it is
// in flight: under load each new session paid a round trip to Redis for
// it (9 % of the CPU of /api/onboarding-url on idv_redis). A caller never
// takes the result of a probe that ended before it arrived, so an outage
// is seen by every request that starts after the first failed probe.
func (st *StorageStore) probeShared(ctx context.Context, p WriteProber) error {
	st.probeMu.Lock()
	f := st.probing
	if f == nil {
		f = &probeFlight{done: make(chan struct{})}
		st.probing = f
		st.probeMu.Unlock()
		// Not the leader's cancellation: others wait for this probe.
		f.err = p.ProbeWrite(context.WithoutCancel(ctx))
		st.probeMu.Lock()
		st.probing = nil
		st.probeMu.Unlock()
		close(f.done)
		return f.err
	}
	f.waiters++
	st.probeMu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type probeFlight struct {
	done    chan struct{}
	err     error
	waiters int // callers sharing it (under probeMu)
}

func (st *StorageStore) now() time.Time {
	if st.Now != nil {
		return st.Now().UTC()
	}
	return time.Now().UTC()
}

func (st *StorageStore) sessionKey(id string) string {
	return path.Join("idv", st.Namespace, "sessions", id+".json")
}

// refKey hashes the reference so that whatever a provider or webhook sends,
// it cannot shape the storage key.
func (st *StorageStore) refKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return path.Join("idv", st.Namespace, "refs", hex.EncodeToString(sum[:16]))
}

// Create implements Store.
func (st *StorageStore) Create(ctx context.Context, s *Session) error {
	if !ValidID(s.UniqueID) {
		return ErrMalformedID
	}
	now := st.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	keys, values := []string{st.sessionKey(s.UniqueID)}, [][]byte{b}
	if s.Ref != "" {
		keys, values = append(keys, st.refKey(s.Ref)), append(values, []byte(s.UniqueID))
	}
	// The session and its index in one durable write: a crash after the
	// answer leaves both.
	return st.put(ctx, s, keys, values)
}

func (st *StorageStore) save(ctx context.Context, s *Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return st.put(ctx, s, []string{st.sessionKey(s.UniqueID)}, [][]byte{b})
}

func (st *StorageStore) load(ctx context.Context, id string) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrMalformedID
	}
	if err := st.init(); err != nil {
		return nil, err
	}
	var b []byte
	var err error
	if st.db != nil {
		b, err = st.boltLoadRaw(ctx, nil, id)
	} else {
		b, err = st.fileLoadRaw(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding stored session: %w", err)
	}
	return &s, nil
}

// Load implements Store.
func (st *StorageStore) Load(ctx context.Context, id string) (*Session, error) {
	s, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.Expired(st.now()) {
		return s, ErrExpired
	}
	return s, nil
}

// LoadByRef implements Store.
func (st *StorageStore) LoadByRef(ctx context.Context, ref string) (*Session, error) {
	if ref == "" {
		return nil, ErrNotFound
	}
	if err := st.init(); err != nil {
		return nil, err
	}
	var id string
	var err error
	if st.db != nil {
		id, err = st.boltRef(ctx, ref)
	} else {
		id, err = st.fileRef(ctx, ref)
	}
	if err != nil {
		return nil, err
	}
	return st.load(ctx, id)
}

// Update implements Store. The storage lock makes read-modify-write safe
// across instances that share the storage. On the file storage fn runs
// inside the database's write transaction: it must not call a store (the
// write waits for itself).
func (st *StorageStore) Update(ctx context.Context, id string, fn func(*Session) (bool, error)) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrMalformedID
	}
	if err := st.init(); err != nil {
		return nil, err
	}
	if st.db != nil {
		return st.boltUpdate(ctx, id, fn)
	}
	unlock, err := st.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	changed, err := fn(s)
	if err != nil || !changed {
		return s, err
	}
	s.UpdatedAt = st.now()
	return s, st.save(ctx, s)
}

var _ Store = (*StorageStore)(nil)

// Sweep deletes the sessions that expired more than retention ago, with
// their index records, and reports how many it deleted. Expired sessions
// are kept for retention so that late webhooks still find theirs. It
// belongs in a periodic job, never in a request.
//
// On an IndexedStorage it reads only the sessions due (the expiry index),
// so it costs a constant number of round trips per deleted session
// whatever the number of live ones; the first sweep indexes the sessions
// stored before the index existed. Elsewhere it lists the sessions and
// reads each.
func (st *StorageStore) Sweep(ctx context.Context, retention time.Duration) (int, error) {
	if err := st.init(); err != nil {
		return 0, err
	}
	cutoff := st.now().Add(-retention)
	if st.db != nil {
		n, err := st.boltSweep(ctx, cutoff)
		if err != nil {
			return n, err
		}
		// Sessions stored as files before the database.
		m, err := st.sweepList(ctx, cutoff, nil)
		return n + m, err
	}
	if st.indexed == nil {
		return st.sweepList(ctx, cutoff, nil)
	}
	deleted := 0
	marker := path.Join("idv", st.Namespace, "expiry-indexed")
	if _, err := st.Storage.Load(ctx, marker); errors.Is(err, fs.ErrNotExist) {
		n, err := st.sweepList(ctx, cutoff, func(s *Session) error {
			return st.indexed.StoreIndexed(ctx, nil, nil, st.expiryIndex(), s.UniqueID, s.ExpiresAt)
		})
		deleted += n
		if err != nil {
			return deleted, err
		}
		if err := st.Storage.Store(ctx, marker, []byte(st.now().Format(time.RFC3339))); err != nil {
			return deleted, unavailable("storing the expiry index marker", err)
		}
	} else if err != nil {
		return 0, unavailable("loading the expiry index marker", err)
	}
	const batch = 500
	for {
		ids, err := st.indexed.IndexDue(ctx, st.expiryIndex(), cutoff, batch)
		if err != nil {
			return deleted, unavailable("reading the expiry index", err)
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return deleted, ctx.Err()
			}
			s, err := st.load(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound) || errors.Is(err, ErrMalformedID):
				// Gone already: only the index entry is left.
			case err != nil:
				// Unreadable: leave it for a person, out of the way of
				// the next sweeps.
				if errors.Is(err, ErrUnavailable) {
					return deleted, err
				}
			case !s.ExpiresAt.Before(cutoff):
				// Its expiry moved: index it where it belongs now.
				if err := st.indexed.StoreIndexed(ctx, nil, nil, st.expiryIndex(), id, s.ExpiresAt); err != nil {
					return deleted, unavailable("indexing session", err)
				}
				continue
			default:
				if err := st.delete(ctx, s); err != nil {
					return deleted, err
				}
				deleted++
			}
			if err := st.indexed.IndexRemove(ctx, st.expiryIndex(), id); err != nil {
				return deleted, unavailable("updating the expiry index", err)
			}
		}
		if len(ids) < batch {
			return deleted, nil
		}
	}
}

// delete removes a session and the index record that still points to it.
func (st *StorageStore) delete(ctx context.Context, s *Session) error {
	if s.Ref != "" {
		if b, err := st.Storage.Load(ctx, st.refKey(s.Ref)); err == nil && string(b) == s.UniqueID {
			_ = st.Storage.Delete(ctx, st.refKey(s.Ref))
		}
	}
	if err := st.Storage.Delete(ctx, st.sessionKey(s.UniqueID)); err != nil {
		return unavailable("deleting session", err)
	}
	return nil
}

// sweepList is the sweep by listing every session; keep is called with each
// session it keeps.
func (st *StorageStore) sweepList(ctx context.Context, cutoff time.Time, keep func(*Session) error) (int, error) {
	dir := path.Join("idv", st.Namespace, "sessions")
	keys, err := st.Storage.List(ctx, dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("listing sessions", err)
	}
	deleted := 0
	for _, key := range keys {
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
		base := path.Base(key)
		if !strings.HasSuffix(base, ".json") {
			continue // a temporary file of an interrupted write
		}
		id := strings.TrimSuffix(base, ".json")
		s, err := st.load(ctx, id)
		if err != nil {
			continue // unreadable ones are left for a person to look at
		}
		if !s.ExpiresAt.Before(cutoff) {
			if keep != nil {
				if err := keep(s); err != nil {
					return deleted, unavailable("indexing session", err)
				}
			}
			continue
		}
		if err := st.delete(ctx, s); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
