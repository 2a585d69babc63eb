package session

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	bolt "go.etcd.io/bbolt"
)

// closeDB closes the shared database of root at once (a restart), where
// Close leaves it open for BoltCloseDelay.
func closeDB(t *testing.T, root string) {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join(root, "idv", "sessions.db"))
	boltDBs.Lock()
	s := boltDBs.m[p]
	delete(boltDBs.m, p)
	boltDBs.Unlock()
	if s != nil {
		if err := s.db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// logRecords counts the records in the namespace's log (and checks that
// each has its header).
func logRecords(t *testing.T, st *StorageStore) int {
	t.Helper()
	n, h := 0, 0
	if err := st.db.View(func(tx *bolt.Tx) error {
		if ns := tx.Bucket([]byte(st.Namespace)); ns != nil {
			n, h = ns.Bucket(bLog).Stats().KeyN, ns.Bucket(bHeads).Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != h {
		t.Fatalf("%d records, %d headers", n, h)
	}
	return n
}

// The index lives in memory; a restart rebuilds it from the log as the
// writes left it: updated sessions read as updated, swept ones are gone,
// refs still find their session, and each session is one record.
func TestIndexIsRebuiltFromTheLog(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	root := st.Storage.(*certmagic.FileStorage).Path
	a := &Session{UniqueID: NewID(), Token: "a1", Ref: "ref-a", ExpiresAt: now.Add(time.Hour)}
	b := &Session{UniqueID: NewID(), Token: "b1", Ref: "ref-b", ExpiresAt: now.Add(time.Hour)}
	gone := &Session{UniqueID: NewID(), Ref: "ref-gone", ExpiresAt: now.Add(-40 * 24 * time.Hour)}
	for _, s := range []*Session{a, b, gone} {
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := st.Update(ctx, a.UniqueID, func(s *Session) (bool, error) {
			s.Token = "a" + itoa(i+2)
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.Sweep(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want the one long expired", n, err)
	}
	if n := logRecords(t, st); n != 2 {
		t.Fatalf("the log holds %d records for 2 sessions", n)
	}
	st.Close()
	closeDB(t, root)

	re := &StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: "test", Now: st.Now}
	t.Cleanup(re.Close)
	if got, err := re.Load(ctx, a.UniqueID); err != nil || got.Token != "a4" {
		t.Fatalf("updated session after a restart: %+v %v", got, err)
	}
	for ref, want := range map[string]string{"ref-a": a.UniqueID, "ref-b": b.UniqueID} {
		if got, err := re.LoadByRef(ctx, ref); err != nil || got.UniqueID != want {
			t.Fatalf("LoadByRef(%s) after a restart: %+v %v", ref, got, err)
		}
	}
	if _, err := re.LoadByRef(ctx, "ref-gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a swept session after a restart: %v", err)
	}
	if _, err := re.Load(ctx, gone.UniqueID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a swept session after a restart: %v", err)
	}
	if _, err := re.Update(ctx, b.UniqueID, func(s *Session) (bool, error) { s.Token = "b2"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if n := logRecords(t, re); n != 2 {
		t.Fatalf("after an update: %d records for 2 sessions", n)
	}
}

// A database written in the layout before (buckets by uniqueId, by ref and
// by expiry) is moved into the log when the namespace is opened: nothing
// stored is lost, refs still resolve, the sweep still finds the expired.
func TestOldLayoutIsMigrated(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	live := &Session{UniqueID: NewID(), Token: "live", Ref: "ref-live", ExpiresAt: now.Add(time.Hour)}
	old := &Session{UniqueID: NewID(), Token: "old", Ref: "ref-old", ExpiresAt: now.Add(-40 * 24 * time.Hour)}
	bl, _ := json.Marshal(live)
	bo, _ := json.Marshal(old)
	writeOldLayout(t, root, map[string][]byte{live.UniqueID: bl, old.UniqueID: bo},
		map[string]string{live.Ref: live.UniqueID, old.Ref: old.UniqueID})

	st := &StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: "test", Now: func() time.Time { return now }}
	t.Cleanup(st.Close)
	ctx := context.Background()
	if got, err := st.LoadByRef(ctx, "ref-live"); err != nil || got.Token != "live" {
		t.Fatalf("a migrated session: %+v %v", got, err)
	}
	if got, err := st.Load(ctx, old.UniqueID); !errors.Is(err, ErrExpired) || got.Token != "old" {
		t.Fatalf("a migrated expired session: %+v %v", got, err)
	}
	if err := st.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("test")).Bucket(bSessions) != nil {
			return errors.New("the old buckets are still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Sweep(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep after the migration: %d %v", n, err)
	}
	if _, err := st.LoadByRef(ctx, "ref-old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the swept session's ref: %v", err)
	}
}

// Reads of a session never miss it while it is being updated: an update
// appends the new record and deletes the old one, and the index follows
// the commit, so a reader that read the index just before may find the
// old record gone and must look again.
func TestReadsDuringUpdatesFindTheSession(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), Ref: "r", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.Load(ctx, s.UniqueID); err != nil {
					t.Errorf("a read during updates: %v", err)
					return
				}
				if _, err := st.LoadByRef(ctx, "r"); err != nil {
					t.Errorf("a read by ref during updates: %v", err)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for i := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for j := range 50 {
				if _, err := st.Update(ctx, s.UniqueID, func(s *Session) (bool, error) {
					s.Events = append(s.Events, Event{Key: itoa(i*1000 + j)})
					return true, nil
				}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if got, err := st.Load(ctx, s.UniqueID); err != nil || len(got.Events) != 200 {
		t.Fatalf("after 200 updates: %d events, %v", len(got.Events), err)
	}
	if n := logRecords(t, st); n != 1 {
		t.Fatalf("one session, %d records", n)
	}
}

// writeOldLayout writes sessions (raw JSON by id) and refs (ref -> id) in the layout before the change.
func writeOldLayout(t *testing.T, root string, sessions map[string][]byte, refs map[string]string) {
	t.Helper()
	p := filepath.Join(root, "idv", "sessions.db")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	st0 := &StorageStore{Namespace: "test"}
	if err := db.Update(func(tx *bolt.Tx) error {
		ns, _ := tx.CreateBucket([]byte("test"))
		sb, _ := ns.CreateBucket(bSessions)
		rb, _ := ns.CreateBucket(bRefs)
		_, _ = ns.CreateBucket(bExpiry)
		for id, b := range sessions {
			if err := sb.Put([]byte(id), b); err != nil {
				return err
			}
		}
		for ref, id := range refs {
			if err := rb.Put([]byte(filepath.Base(st0.refKey(ref))), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// The migration keeps a stored session whose JSON no longer decodes into
// Session (Load reports the error, as before): nothing stored is dropped.
func TestMigrationKeepsSessionsThatDoNotDecode(t *testing.T) {
	root := t.TempDir()
	id := NewID()
	raw := []byte(`{"uniqueId":"` + id + `","expiresAt":"not a time","token":"keep me"}`)
	writeOldLayout(t, root, map[string][]byte{id: raw}, nil)
	before, err := DumpFileStorage(root)
	if err != nil || len(before) != 1 {
		t.Fatalf("before: %v %v", before, err)
	}
	closeDB(t, root)
	st := &StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: "test"}
	t.Cleanup(st.Close)
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	after, err := DumpFileStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 {
		t.Fatalf("the migration deleted a stored session: before %d records, after %d (%v)", len(before), len(after), after)
	}
}

// Two sessions with the same ref: the old refs bucket says which one the
// ref names (the last written), and after the migration a webhook still
// finds that one, whatever the order of their uniqueIds.
func TestMigrationKeepsWhichSessionARefNamed(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newer := &Session{UniqueID: "00000000-0000-4000-8000-000000000001", Token: "newer", Ref: "R", ExpiresAt: now.Add(time.Hour)}
	older := &Session{UniqueID: "ffffffff-ffff-4fff-bfff-ffffffffffff", Token: "older", Ref: "R", ExpiresAt: now.Add(time.Hour)}
	bn, _ := json.Marshal(newer)
	bo, _ := json.Marshal(older)
	writeOldLayout(t, root, map[string][]byte{newer.UniqueID: bn, older.UniqueID: bo}, map[string]string{"R": newer.UniqueID})
	st := &StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: "test", Now: func() time.Time { return now }}
	t.Cleanup(st.Close)
	got, err := st.LoadByRef(context.Background(), "R")
	if err != nil {
		t.Fatal(err)
	}
	if got.Token != "newer" {
		t.Fatalf("after migration ref R names %q; the old refs bucket named %q", got.Token, "newer")
	}
}
