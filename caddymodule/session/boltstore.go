package session

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	bolt "go.etcd.io/bbolt"
)

// On Caddy's default storage (certmagic.FileStorage) sessions live in one
// bbolt database, <storage root>/idv/sessions.db, instead of a file per
// session and per index record. Concurrent writers share one transaction
// (groupCommit, groupcommit.go): a new session and its index record are
// durable before the answer for the price of a share of one commit, where
// the files cost two fsyncs each.
//
// bbolt holds an exclusive lock on the file, so one process serves a
// storage directory's sessions (a cluster shares sessions through
// idv_redis). Sessions stored as files before are still read (and then
// written to the database when they change), and swept when they expire.

// boltDBs shares one open database per path between every store of the
// process (handlers, reloads); the last Close closes it.
var boltDBs = struct {
	sync.Mutex
	m map[string]*sharedDB
}{m: map[string]*sharedDB{}}

type sharedDB struct {
	db   *bolt.DB
	gc   *groupCommit
	refs int
}

// BoltOpenTimeout bounds the wait for another process's lock on the
// database.
var BoltOpenTimeout = 3 * time.Second

func openBolt(fs *certmagic.FileStorage) (*sharedDB, string, error) {
	p, err := filepath.Abs(filepath.Join(fs.Path, "idv", "sessions.db"))
	if err != nil {
		return nil, "", err
	}
	boltDBs.Lock()
	defer boltDBs.Unlock()
	if s, ok := boltDBs.m[p]; ok {
		s.refs++
		return s, p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, "", err
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: BoltOpenTimeout, FreelistType: bolt.FreelistMapType,
		// The free list is rebuilt at open instead of written at every
		// commit: smaller commits on the hot path.
		NoFreelistSync: true,
		// Address space only: the map is not remapped (which waits for
		// every reader) until the file outgrows it.
		InitialMmapSize: BoltInitialMmap})
	if err != nil {
		return nil, "", fmt.Errorf("opening the session database %s (is another process using this storage directory? a cluster shares sessions through idv_redis): %w", p, err)
	}
	s := &sharedDB{db: db, gc: &groupCommit{db: db}, refs: 1}
	boltDBs.m[p] = s
	return s, p, nil
}

// BoltInitialMmap is the session database's initial memory map (address
// space, not memory).
var BoltInitialMmap = 256 << 20

// BoltCloseDelay is how long an unused database stays open: Caddy cleans
// a handler up while a graceful stop may still be finishing requests that
// store their session; a reload or restart within it reuses the database.
var BoltCloseDelay = time.Minute

func closeBolt(p string) {
	boltDBs.Lock()
	defer boltDBs.Unlock()
	s, ok := boltDBs.m[p]
	if !ok {
		return
	}
	if s.refs--; s.refs == 0 {
		time.AfterFunc(BoltCloseDelay, func() {
			boltDBs.Lock()
			defer boltDBs.Unlock()
			if s.refs == 0 && boltDBs.m[p] == s {
				delete(boltDBs.m, p)
				_ = s.db.Close()
			}
		})
	}
}

// DumpFileStorage returns every session in the database of the file
// storage rooted at root, by "<namespace>/<uniqueId>", for tests and
// inspection. A storage without a database has none.
func DumpFileStorage(root string) (map[string][]byte, error) {
	fs := &certmagic.FileStorage{Path: root}
	if _, err := os.Stat(filepath.Join(root, "idv", "sessions.db")); errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	sdb, p, err := openBolt(fs)
	if err != nil {
		return nil, err
	}
	defer closeBolt(p)
	out := map[string][]byte{}
	err = sdb.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(ns []byte, b *bolt.Bucket) error {
			sessions := b.Bucket(bSessions)
			if sessions == nil {
				return nil
			}
			return sessions.ForEach(func(k, v []byte) error {
				out[string(ns)+"/"+string(k)] = append([]byte(nil), v...)
				return nil
			})
		})
	})
	return out, err
}

// Bucket names inside the namespace's bucket.
var (
	bSessions = []byte("sessions") // uniqueId -> session JSON
	bRefs     = []byte("refs")     // refKey hash -> uniqueId
	bExpiry   = []byte("expiry")   // 8-byte big-endian unix ms + uniqueId -> nothing
)

func expiryKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	ms := at.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	binary.BigEndian.PutUint64(k, uint64(ms))
	return append(k, id...)
}

func (st *StorageStore) refHash(ref string) []byte { return []byte(filepathBase(st.refKey(ref))) }

func filepathBase(k string) string { return filepath.Base(k) }

// nsBuckets returns the namespace's buckets, creating them in a writable tx.
func (st *StorageStore) nsBuckets(tx *bolt.Tx) (sessions, refs, expiry *bolt.Bucket, err error) {
	ns := tx.Bucket([]byte(st.Namespace))
	if ns == nil {
		if !tx.Writable() {
			return nil, nil, nil, nil
		}
		if ns, err = tx.CreateBucketIfNotExists([]byte(st.Namespace)); err != nil {
			return nil, nil, nil, err
		}
	}
	if tx.Writable() {
		for _, name := range [][]byte{bSessions, bRefs, bExpiry} {
			if _, err := ns.CreateBucketIfNotExists(name); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return ns.Bucket(bSessions), ns.Bucket(bRefs), ns.Bucket(bExpiry), nil
}

// boltPut writes s (and its index records) in tx; old is the version it
// replaces, if any.
func (st *StorageStore) boltPut(tx *bolt.Tx, s *Session, b []byte, old *Session) error {
	sessions, refs, expiry, err := st.nsBuckets(tx)
	if err != nil {
		return err
	}
	if err := sessions.Put([]byte(s.UniqueID), b); err != nil {
		return err
	}
	if s.Ref != "" {
		if err := refs.Put(st.refHash(s.Ref), []byte(s.UniqueID)); err != nil {
			return err
		}
	}
	if old != nil && !old.ExpiresAt.Equal(s.ExpiresAt) {
		_ = expiry.Delete(expiryKey(old.ExpiresAt, s.UniqueID))
	}
	return expiry.Put(expiryKey(s.ExpiresAt, s.UniqueID), nil)
}

// commit runs fn in a group-committed write transaction (groupcommit.go).
func (st *StorageStore) commit(fn func(*bolt.Tx) error) error { return st.gc.do(fn) }

func (st *StorageStore) boltCreate(ctx context.Context, s *Session, b []byte) error {
	if err := st.commit(func(tx *bolt.Tx) error { return st.boltPut(tx, s, b, nil) }); err != nil {
		return unavailable("storing session", err)
	}
	return nil
}

// boltGet returns the stored JSON of id, or nil.
func (st *StorageStore) boltGet(tx *bolt.Tx, id string) ([]byte, error) {
	sessions, _, _, err := st.nsBuckets(tx)
	if err != nil || sessions == nil {
		return nil, err
	}
	if v := sessions.Get([]byte(id)); v != nil {
		return append([]byte(nil), v...), nil
	}
	return nil, nil
}

// boltLoadRaw reads id from the database, then from a file stored before
// the database existed.
func (st *StorageStore) boltLoadRaw(ctx context.Context, tx *bolt.Tx, id string) ([]byte, error) {
	var b []byte
	var err error
	if tx != nil {
		b, err = st.boltGet(tx, id)
	} else {
		err = st.db.View(func(tx *bolt.Tx) error { b, err = st.boltGet(tx, id); return err })
	}
	if err != nil {
		return nil, unavailable("loading session", err)
	}
	if b != nil {
		return b, nil
	}
	return st.fileLoadRaw(ctx, id)
}

func (st *StorageStore) boltRef(ctx context.Context, ref string) (string, error) {
	var id string
	err := st.db.View(func(tx *bolt.Tx) error {
		_, refs, _, err := st.nsBuckets(tx)
		if err == nil && refs != nil {
			id = string(refs.Get(st.refHash(ref)))
		}
		return err
	})
	if err != nil {
		return "", unavailable("loading session index", err)
	}
	if id != "" {
		return id, nil
	}
	return st.fileRef(ctx, ref)
}

// boltUpdate is Update in one batched transaction: bbolt serialises
// writers, so no storage lock is needed. The group commit may run fn
// again after a failed batch; it reads the session afresh each time.
func (st *StorageStore) boltUpdate(ctx context.Context, id string, fn func(*Session) (bool, error)) (*Session, error) {
	var out *Session
	var fnErr error
	err := st.commit(func(tx *bolt.Tx) error {
		out, fnErr = nil, nil
		b, err := st.boltLoadRaw(ctx, tx, id)
		if err != nil {
			fnErr = err
			return nil
		}
		var s, old Session
		if err := json.Unmarshal(b, &s); err != nil {
			fnErr = fmt.Errorf("decoding stored session: %w", err)
			return nil
		}
		old = s
		changed, err := fn(&s)
		out = &s
		if err != nil || !changed {
			fnErr = err
			return nil
		}
		s.UpdatedAt = st.now()
		nb, err := json.Marshal(&s)
		if err != nil {
			fnErr = err
			return nil
		}
		return st.boltPut(tx, &s, nb, &old)
	})
	if err != nil {
		return nil, unavailable("updating session", err)
	}
	return out, fnErr
}

// boltSweep deletes from the database the sessions that expired before
// cutoff, reading only those (the expiry bucket is ordered by time).
func (st *StorageStore) boltSweep(ctx context.Context, cutoff time.Time) (int, error) {
	limit := expiryKey(cutoff, "")
	deleted := 0
	for {
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
		n := 0
		err := st.db.Update(func(tx *bolt.Tx) error {
			n = 0
			sessions, refs, expiry, err := st.nsBuckets(tx)
			if err != nil {
				return err
			}
			c := expiry.Cursor()
			var due [][]byte
			for k, _ := c.First(); k != nil && len(due) < 1000 && string(k[:8]) < string(limit[:8]); k, _ = c.Next() {
				due = append(due, append([]byte(nil), k...))
			}
			for _, k := range due {
				id := k[8:]
				if b := sessions.Get(id); b != nil {
					var s Session
					if json.Unmarshal(b, &s) == nil && s.Ref != "" {
						if cur := refs.Get(st.refHash(s.Ref)); string(cur) == string(id) {
							if err := refs.Delete(st.refHash(s.Ref)); err != nil {
								return err
							}
						}
					}
					if err := sessions.Delete(id); err != nil {
						return err
					}
					n++
				}
				if err := expiry.Delete(k); err != nil {
					return err
				}
			}
			if len(due) == 1000 {
				n = -n - 1 // more to do
			}
			return nil
		})
		if err != nil {
			return deleted, unavailable("sweeping sessions", err)
		}
		if n >= 0 {
			return deleted + n, nil
		}
		deleted += -n - 1
	}
}

// fileLoadRaw and fileRef read the records stored as files (before the
// database, or on other storages).
func (st *StorageStore) fileLoadRaw(ctx context.Context, id string) ([]byte, error) {
	b, err := st.Storage.Load(ctx, st.sessionKey(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("loading session", err)
	}
	return b, nil
}

func (st *StorageStore) fileRef(ctx context.Context, ref string) (string, error) {
	b, err := st.Storage.Load(ctx, st.refKey(ref))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", unavailable("loading session index", err)
	}
	return string(b), nil
}
