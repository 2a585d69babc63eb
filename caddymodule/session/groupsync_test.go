package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// While one flush runs, every writer that arrives waits for the next one,
// and they all share it: N concurrent writers cost two flushes, not N.
func TestGroupSyncSharesFlushes(t *testing.T) {
	const n = 20
	g := &groupSync{root: t.TempDir()}
	g.cond = sync.NewCond(&g.mu)
	var flushes atomic.Int32
	g.flush = func(string) error {
		if flushes.Add(1) == 1 {
			// Hold the first flush until every writer has arrived.
			for {
				g.mu.Lock()
				a := g.arrived
				g.mu.Unlock()
				if a == n {
					break
				}
				runtime.Gosched()
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.wait(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := flushes.Load(); got != 2 {
		t.Fatalf("%d concurrent writers caused %d flushes, want 2", n, got)
	}
	// A writer arriving now needs a flush of its own.
	if err := g.wait(); err != nil || flushes.Load() != 3 {
		t.Fatalf("a later writer: %v, %d flushes", err, flushes.Load())
	}
}

// A failed flush is reported to the writers it was meant to cover.
func TestGroupSyncReportsFlushErrors(t *testing.T) {
	g := &groupSync{root: t.TempDir(), flush: func(string) error { return errors.New("EIO") }}
	g.cond = sync.NewCond(&g.mu)
	if err := g.wait(); err == nil {
		t.Fatal("a failed flush was reported as success")
	}
}

func TestFileStoreUsesGroupCommit(t *testing.T) {
	if !haveSyncfs {
		t.Skip("no syncfs on this platform: sessions use FileStorage.Store")
	}
	st, now := newStore(t)
	st.init()
	if st.files == nil {
		t.Fatal("the file storage does not use the group-commit writer")
	}
	g := st.files.sync
	g.mu.Lock()
	before := g.started
	g.mu.Unlock()
	s := &Session{UniqueID: NewID(), Ref: "r", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	after := g.started
	g.mu.Unlock()
	if after != before+1 {
		t.Fatalf("Create (session and index) flushed %d times, want once", after-before)
	}
	// No temporary file is left beside the records.
	dir := filepath.Dir(st.files.fs.Filename(st.sessionKey(s.UniqueID)))
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("the sessions directory holds %d entries, want 1", len(ents))
	}
}

// The record layout is certmagic's: sessions written before the group
// commit (FileStorage.Store) are read by the store, and what the store
// writes is read by FileStorage.Load (an older node sharing the directory).
func TestFileLayoutIsUnchanged(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	fs := st.Storage.(*certmagic.FileStorage)
	old := &StorageStore{Storage: struct{ certmagic.Storage }{fs}, Namespace: st.Namespace, Now: st.Now}
	legacy := &Session{UniqueID: NewID(), Token: "old", Ref: "legacy", ExpiresAt: now.Add(time.Hour)}
	if err := old.Create(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LoadByRef(ctx, "legacy"); err != nil || got.Token != "old" {
		t.Fatalf("a session stored by FileStorage.Store: %+v %v", got, err)
	}
	fresh := &Session{UniqueID: NewID(), Token: "new", Ref: "fresh", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if got, err := old.LoadByRef(ctx, "fresh"); err != nil || got.Token != "new" {
		t.Fatalf("FileStorage.Load of a group-committed session: %+v %v", got, err)
	}
}

// A storage failure is ErrUnavailable (503), not "no session".
func TestStorageFailuresAreUnavailable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Storage rooted below a regular file: every operation fails.
	st := &StorageStore{Storage: &certmagic.FileStorage{Path: filepath.Join(file, "x")}, Namespace: "n"}
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), Ref: "r", ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.Create(ctx, s); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create: %v, want ErrUnavailable", err)
	}
	if err := st.Writable(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Writable: %v, want ErrUnavailable", err)
	}
	if _, err := st.Load(ctx, s.UniqueID); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Errorf("Load: %v, want ErrUnavailable", err)
	}
	ok, _ := newStore(t)
	if err := ok.Writable(ctx); err != nil {
		t.Errorf("Writable on a working storage: %v", err)
	}
	if _, err := ok.Load(ctx, NewID()); errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing session: %v, want ErrNotFound only", err)
	}
}
