package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// On Caddy's default storage (certmagic.FileStorage) sessions live in one
// bbolt database, <storage root>/idv/sessions.db, instead of a file per
// session and per index record. A session is a record appended to its
// namespace's log, found through an index in memory (nsIndex), and
// concurrent writers share one transaction (groupCommit, groupcommit.go):
// a new session is durable before the answer for the price of an append
// and a share of one commit, where the files cost two fsyncs each.
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

	nsMu sync.Mutex
	ns   map[string]*nsIndex // opened namespaces
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
	s := &sharedDB{db: db, gc: &groupCommit{db: db}, refs: 1, ns: map[string]*nsIndex{}}
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
			if old := b.Bucket(bSessions); old != nil { // not migrated yet
				if err := old.ForEach(func(k, v []byte) error {
					out[string(ns)+"/"+string(k)] = append([]byte(nil), v...)
					return nil
				}); err != nil {
					return err
				}
			}
			log := b.Bucket(bLog)
			if log == nil {
				return nil
			}
			// In write order: a later record of an id replaces an earlier one.
			return log.ForEach(func(_, v []byte) error {
				h, ok := parseRecord(v)
				if !ok {
					return nil
				}
				out[string(ns)+"/"+uuid.UUID(h.id).String()] = append([]byte(nil), h.json...)
				return nil
			})
		})
	})
	return out, err
}

// The layout inside a namespace's bucket. Sessions are records in write
// order, keyed by a sequence number, and found through an index kept in
// memory (nsIndex): a new session is an append to the last page of one
// bucket, whatever the number of sessions stored. Keyed by their random
// uniqueId and interviewId, as before, each new session dirtied two leaves
// and two branches at random places of two B+trees, and bbolt's work on
// them (reading the nodes, splitting, writing about 4.5 pages) was a third
// of the CPU of a new session (bench/analysis.md). The headers are also in
// a bucket of their own, so that opening a namespace reads 42 bytes per
// session, not every session.
var (
	bLog   = []byte("log")   // 8-byte big-endian sequence -> record
	bHeads = []byte("heads") // the same sequence -> the record's header

	// The layout before (read once, then migrated into bLog).
	bSessions = []byte("sessions") // uniqueId -> session JSON
	bRefs     = []byte("refs")     // refKey hash -> uniqueId
	bExpiry   = []byte("expiry")   // 8-byte big-endian unix ms + uniqueId -> nothing
)

// A record is a header, then the session's JSON:
//
//	version (1) | expiresAt, unix ms, big-endian (8) | uniqueId (16) |
//	has a ref (1) | the ref's digest, as in refKey (16) | JSON
const (
	recVersion = 1
	recHeader  = 1 + 8 + 16 + 1 + 16
)

type record struct {
	exp    int64
	id     [16]byte
	hasRef bool
	ref    [16]byte
	json   []byte
}

func encodeRecord(s *Session, id [16]byte, b []byte) []byte {
	h := record{exp: max(s.ExpiresAt.UnixMilli(), 0), id: id, hasRef: s.Ref != ""}
	if h.hasRef {
		h.ref = refDigest(s.Ref)
	}
	return h.encode(b)
}

// encode returns the header followed by b.
func (h record) encode(b []byte) []byte {
	r := make([]byte, recHeader, recHeader+len(b))
	r[0] = recVersion
	binary.BigEndian.PutUint64(r[1:9], uint64(h.exp))
	copy(r[9:25], h.id[:])
	if h.hasRef {
		r[25] = 1
		copy(r[26:42], h.ref[:])
	}
	return append(r, b...)
}

// parseRecord reads a record; the JSON aliases v.
func parseRecord(v []byte) (record, bool) {
	if len(v) < recHeader || v[0] != recVersion {
		return record{}, false
	}
	var h record
	h.exp = int64(binary.BigEndian.Uint64(v[1:9]))
	copy(h.id[:], v[9:25])
	h.hasRef = v[25] == 1
	copy(h.ref[:], v[26:42])
	h.json = v[recHeader:]
	return h, true
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// refDigest is the digest refKey names the index record by.
func refDigest(ref string) (d [16]byte) {
	sum := sha256.Sum256([]byte(ref))
	copy(d[:], sum[:16])
	return d
}

// idBytes is the 16 bytes of a uniqueId (ValidID holds for every id that
// reaches the store).
func idBytes(id string) ([16]byte, bool) {
	u, err := uuid.Parse(id)
	return u, err == nil
}

// nsIndex is a namespace's index: where each session's record is and when
// it expires, and which session each ref names. It is built from the
// records when the namespace is first opened (one scan of headers) and
// changed only after the transaction that changed the records committed
// (txState.apply), so it never names a record that may still be lost.
type nsIndex struct {
	ns    string
	ready chan struct{} // closed once built (err says how)
	err   error

	mu   sync.RWMutex
	ids  map[[16]byte]logEntry
	refs map[[16]byte][16]byte
	dels int // deletions since the maps were last reallocated
}

type logEntry struct {
	seq uint64
	exp int64 // unix ms
}

func (x *nsIndex) get(id [16]byte) (logEntry, bool) {
	x.mu.RLock()
	e, ok := x.ids[id]
	x.mu.RUnlock()
	return e, ok
}

func (x *nsIndex) ref(d [16]byte) ([16]byte, bool) {
	x.mu.RLock()
	id, ok := x.refs[d]
	x.mu.RUnlock()
	return id, ok
}

// txState is what a write transaction changed in the indexes, applied once
// it committed. Writes in the same transaction see it (a batch may update
// a session created earlier in it).
type txState struct {
	ids  map[idxKey]*logEntry // nil: deleted
	refs map[idxKey]*[16]byte // nil: deleted
	seen []*nsIndex
}

type idxKey struct {
	x *nsIndex
	k [16]byte
}

func (ts *txState) touch(x *nsIndex) {
	if !slices.Contains(ts.seen, x) {
		ts.seen = append(ts.seen, x)
	}
}

func (ts *txState) apply() {
	for _, x := range ts.seen {
		x.mu.Lock()
		for k, e := range ts.ids {
			if k.x != x {
				continue
			}
			if e == nil {
				delete(x.ids, k.k)
				x.dels++
			} else {
				x.ids[k.k] = *e
			}
		}
		for k, id := range ts.refs {
			if k.x != x {
				continue
			}
			if id == nil {
				delete(x.refs, k.k)
			} else {
				x.refs[k.k] = *id
			}
		}
		// Go maps never shrink: after a sweep deleted more than is left,
		// copy them into maps of their size.
		if x.dels > 1024 && x.dels > len(x.ids) {
			x.ids, x.refs, x.dels = maps.Clone(x.ids), maps.Clone(x.refs), 0
		}
		x.mu.Unlock()
	}
}

// lookup is the entry of id as the running write transaction sees it.
func (st *StorageStore) lookup(id [16]byte) (logEntry, bool) {
	if ts := st.gc.cur; ts != nil {
		if e, ok := ts.ids[idxKey{st.idx, id}]; ok {
			if e == nil {
				return logEntry{}, false
			}
			return *e, true
		}
	}
	return st.idx.get(id)
}

// index opens the namespace: it moves sessions stored in the layout before
// into the log (once), then reads every record's header. Callers of one
// namespace wait for its first opening; other namespaces do not.
func (sdb *sharedDB) index(ns string) (*nsIndex, error) {
	sdb.nsMu.Lock()
	x, ok := sdb.ns[ns]
	if !ok {
		x = &nsIndex{ns: ns, ready: make(chan struct{})}
		sdb.ns[ns] = x
	}
	sdb.nsMu.Unlock()
	if ok {
		<-x.ready
		return x, x.err
	}
	// Writers of this namespace wait for its index, so nothing changes it
	// during the scan; another namespace's writes may commit meanwhile.
	x.err = sdb.gc.update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ns))
		if b == nil {
			x.ids, x.refs = map[[16]byte]logEntry{}, map[[16]byte][16]byte{}
			return nil
		}
		if err := migrate(b); err != nil {
			return err
		}
		stale, err := x.scan(b)
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := deleteRecord(b.Bucket(bLog), b.Bucket(bHeads), k); err != nil {
				return err
			}
		}
		return nil
	})
	if x.err != nil {
		x.err = fmt.Errorf("reading the session index of %q: %w", ns, x.err)
		sdb.nsMu.Lock()
		delete(sdb.ns, ns) // the next store of the namespace tries again
		sdb.nsMu.Unlock()
	}
	close(x.ready)
	return x, x.err
}

// scan builds the index from the namespace's headers; stale are the keys
// of earlier records of an id (none unless the file was written by hand).
func (x *nsIndex) scan(ns *bolt.Bucket) (stale [][]byte, err error) {
	ids, refs := map[[16]byte]logEntry{}, map[[16]byte][16]byte{}
	if heads := ns.Bucket(bHeads); heads != nil {
		err = heads.ForEach(func(k, v []byte) error {
			h, ok := parseRecord(v)
			if !ok || len(k) != 8 {
				return nil // left for a person to look at
			}
			if old, ok := ids[h.id]; ok {
				stale = append(stale, seqKey(old.seq))
			}
			ids[h.id] = logEntry{seq: binary.BigEndian.Uint64(k), exp: h.exp}
			if h.hasRef {
				refs[h.ref] = h.id
			}
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	x.ids, x.refs, x.dels = ids, refs, 0
	x.mu.Unlock()
	return stale, nil
}

// reload rebuilds the index from the database: after a commit that
// failed, bbolt may still have made some of it visible (a sync that
// failed after its pages were written).
func (x *nsIndex) reload(db *bolt.DB) {
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(x.ns)); b != nil {
			_, err := x.scan(b)
			return err
		}
		return nil
	})
}

// neverExpires is the expiry of a migrated session whose JSON does not
// decode and that had no expiry entry: it is kept, not swept.
const neverExpires = int64(1<<63 - 1)

// migrate moves the sessions of the layout before (a bucket by uniqueId,
// one by ref, one by expiry) into the log, in the transaction that opens
// the namespace. Nothing stored is dropped: a session whose JSON does not
// decode keeps its bytes (Load reports the error, as before) and the
// expiry of its old expiry entry; a ref names the session the old ref
// bucket named (those sessions are written last, and the last record with
// a ref wins when the index is built). A key that is not a uniqueId (none
// is written so) stays in the old bucket, which is then kept.
func migrate(ns *bolt.Bucket) error {
	old := ns.Bucket(bSessions)
	if old == nil {
		return nil
	}
	log, heads, err := logBuckets(ns)
	if err != nil {
		return err
	}
	named := map[[16]byte][16]byte{} // uniqueId -> the digest of a ref naming it
	if refs := ns.Bucket(bRefs); refs != nil {
		if err := refs.ForEach(func(k, v []byte) error {
			var d [16]byte
			id, ok := idBytes(string(v))
			if n, err := hex.Decode(d[:], k); ok && err == nil && n == len(d) {
				named[id] = d
			}
			return nil
		}); err != nil {
			return err
		}
	}
	expires := map[[16]byte]int64{}
	if expiry := ns.Bucket(bExpiry); expiry != nil {
		if err := expiry.ForEach(func(k, _ []byte) error {
			if id, ok := idBytes(string(k[min(8, len(k)):])); ok && len(k) > 8 {
				expires[id] = int64(binary.BigEndian.Uint64(k[:8]))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	var moved [][]byte
	left := 0
	for _, last := range []bool{false, true} {
		if err := old.ForEach(func(k, v []byte) error {
			id, ok := idBytes(string(k))
			if !ok {
				if !last {
					left++
				}
				return nil
			}
			d, isNamed := named[id]
			if isNamed != last {
				return nil
			}
			h := record{id: id, exp: neverExpires}
			if e, ok := expires[id]; ok {
				h.exp = e
			}
			var s Session
			if json.Unmarshal(v, &s) == nil {
				h.exp = max(s.ExpiresAt.UnixMilli(), 0)
				if s.Ref != "" {
					h.hasRef, h.ref = true, refDigest(s.Ref)
				}
			}
			if isNamed {
				h.hasRef, h.ref = true, d
			}
			moved = append(moved, append([]byte(nil), k...))
			_, err := appendRecord(log, heads, h.encode(v))
			return err
		}); err != nil {
			return err
		}
	}
	if left > 0 {
		for _, k := range moved {
			if err := old.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range [][]byte{bSessions, bRefs, bExpiry} {
		if ns.Bucket(name) != nil {
			if err := ns.DeleteBucket(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// logBuckets returns the namespace's log and heads in a write transaction,
// creating them the first time.
func logBuckets(ns *bolt.Bucket) (log, heads *bolt.Bucket, err error) {
	if log, err = ns.CreateBucketIfNotExists(bLog); err != nil {
		return nil, nil, err
	}
	if heads, err = ns.CreateBucketIfNotExists(bHeads); err != nil {
		return nil, nil, err
	}
	// Sequence keys only ever append: full pages, half as many of them.
	log.FillPercent, heads.FillPercent = 1, 1
	return log, heads, nil
}

func (st *StorageStore) logBuckets(tx *bolt.Tx) (log, heads *bolt.Bucket, err error) {
	ns, err := tx.CreateBucketIfNotExists([]byte(st.Namespace))
	if err != nil {
		return nil, nil, err
	}
	return logBuckets(ns)
}

// appendRecord adds rec (encodeRecord) under the next sequence number.
func appendRecord(log, heads *bolt.Bucket, rec []byte) (uint64, error) {
	seq, err := log.NextSequence()
	if err != nil {
		return 0, err
	}
	k := seqKey(seq)
	if err := log.Put(k, rec); err != nil {
		return 0, err
	}
	return seq, heads.Put(k, rec[:recHeader])
}

func deleteRecord(log, heads *bolt.Bucket, k []byte) error {
	if err := log.Delete(k); err != nil {
		return err
	}
	return heads.Delete(k)
}

func readLog(tx *bolt.Tx, ns string) *bolt.Bucket {
	if b := tx.Bucket([]byte(ns)); b != nil {
		return b.Bucket(bLog)
	}
	return nil
}

// boltPut appends s (JSON b) to the log in tx, in place of its previous
// record; the index follows when tx has committed.
func (st *StorageStore) boltPut(tx *bolt.Tx, s *Session, b []byte) error {
	id, ok := idBytes(s.UniqueID)
	if !ok {
		return ErrMalformedID
	}
	log, heads, err := st.logBuckets(tx)
	if err != nil {
		return err
	}
	if e, ok := st.lookup(id); ok {
		if err := deleteRecord(log, heads, seqKey(e.seq)); err != nil {
			return err
		}
	}
	seq, err := appendRecord(log, heads, encodeRecord(s, id, b))
	if err != nil {
		return err
	}
	ts := st.gc.cur
	ts.touch(st.idx)
	ts.ids[idxKey{st.idx, id}] = &logEntry{seq: seq, exp: s.ExpiresAt.UnixMilli()}
	if s.Ref != "" {
		ts.refs[idxKey{st.idx, refDigest(s.Ref)}] = &id
	}
	return nil
}

// commit runs fn in a group-committed write transaction (groupcommit.go).
func (st *StorageStore) commit(fn func(*bolt.Tx) error) error { return st.gc.do(fn) }

func (st *StorageStore) boltCreate(ctx context.Context, s *Session, b []byte) error {
	if err := st.commit(func(tx *bolt.Tx) error { return st.boltPut(tx, s, b) }); err != nil {
		return unavailable("storing session", err)
	}
	return nil
}

// boltGet returns the stored JSON of id, or nil. In a write transaction it
// reads what that transaction sees; otherwise the index, then the record.
func (st *StorageStore) boltGet(tx *bolt.Tx, id string) ([]byte, error) {
	key, ok := idBytes(id)
	if !ok {
		return nil, nil
	}
	get := func(tx *bolt.Tx, e logEntry) []byte {
		if log := readLog(tx, st.Namespace); log != nil {
			if h, ok := parseRecord(log.Get(seqKey(e.seq))); ok && h.id == key {
				return append([]byte(nil), h.json...)
			}
		}
		return nil
	}
	if tx != nil {
		e, ok := st.lookup(key)
		if !ok {
			return nil, nil
		}
		return get(tx, e), nil
	}
	read := func() (b []byte, indexed bool, err error) {
		e, ok := st.idx.get(key)
		if !ok {
			return nil, false, nil
		}
		err = st.db.View(func(tx *bolt.Tx) error { b = get(tx, e); return nil })
		return b, true, err
	}
	// A session absent from the index is absent: it enters the index once
	// its first write committed, and leaves it when swept.
	if b, indexed, err := read(); err != nil || b != nil || !indexed {
		return b, err
	}
	// A write replaced the record after the index was read (its index
	// follows its commit): read again with no write in progress, when the
	// index and the records agree.
	st.gc.wmu.Lock()
	defer st.gc.wmu.Unlock()
	b, _, err := read()
	return b, err
}

// boltLoadRaw reads id from the database, then from a file stored before
// the database existed.
func (st *StorageStore) boltLoadRaw(ctx context.Context, tx *bolt.Tx, id string) ([]byte, error) {
	b, err := st.boltGet(tx, id)
	if err != nil {
		return nil, unavailable("loading session", err)
	}
	if b != nil {
		return b, nil
	}
	return st.fileLoadRaw(ctx, id)
}

func (st *StorageStore) boltRef(ctx context.Context, ref string) (string, error) {
	if id, ok := st.idx.ref(refDigest(ref)); ok {
		return uuid.UUID(id).String(), nil
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
		var s Session
		if err := json.Unmarshal(b, &s); err != nil {
			fnErr = fmt.Errorf("decoding stored session: %w", err)
			return nil
		}
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
		return st.boltPut(tx, &s, nb)
	})
	if err != nil {
		return nil, unavailable("updating session", err)
	}
	return out, fnErr
}

// boltSweep deletes from the database the sessions that expired before
// cutoff, with the ref entries that still name them, 1000 per transaction;
// the index says which are due without reading a record.
func (st *StorageStore) boltSweep(ctx context.Context, cutoff time.Time) (int, error) {
	cut := cutoff.UnixMilli()
	deleted := 0
	for {
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
		var due [][16]byte
		st.idx.mu.RLock()
		for id, e := range st.idx.ids {
			if e.exp < cut {
				if due = append(due, id); len(due) == 1000 {
					break
				}
			}
		}
		st.idx.mu.RUnlock()
		if len(due) == 0 {
			return deleted, nil
		}
		n := 0
		err := st.gc.update(func(tx *bolt.Tx) error {
			n = 0
			ns := tx.Bucket([]byte(st.Namespace))
			if ns == nil || ns.Bucket(bLog) == nil {
				return nil
			}
			log, heads := ns.Bucket(bLog), ns.Bucket(bHeads)
			ts := st.gc.cur
			ts.touch(st.idx)
			for _, id := range due {
				e, ok := st.lookup(id)
				if !ok || e.exp >= cut {
					continue // renewed meanwhile
				}
				k := seqKey(e.seq)
				if h, ok := parseRecord(heads.Get(k)); ok && h.hasRef {
					if cur, ok := st.idx.ref(h.ref); ok && cur == id {
						ts.refs[idxKey{st.idx, h.ref}] = nil
					}
				}
				if err := deleteRecord(log, heads, k); err != nil {
					return err
				}
				ts.ids[idxKey{st.idx, id}] = nil
				n++
			}
			return nil
		})
		if err != nil {
			return deleted, unavailable("sweeping sessions", err)
		}
		deleted += n
		if len(due) < 1000 {
			return deleted, nil
		}
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
