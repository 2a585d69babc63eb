package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// On the file storage, sessions go to the database: a new session writes
// no file, and its index and expiry entries are in the same transaction.
func TestFileStorageUsesTheDatabase(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), Ref: "r", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st.db == nil {
		t.Fatal("the file storage does not use the session database")
	}
	root := st.Storage.(*certmagic.FileStorage).Path
	if _, err := os.Stat(filepath.Join(root, "idv", "sessions.db")); err != nil {
		t.Fatalf("no database file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "idv", "test", "sessions")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a session file was written: %v", err)
	}
	// Two stores of one directory (two handlers, a reload) share it.
	other := &StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: "test"}
	t.Cleanup(other.Close)
	if got, err := other.LoadByRef(ctx, "r"); err != nil || got.UniqueID != s.UniqueID {
		t.Fatalf("a second store of the directory: %v %v", got, err)
	}
}

// Sessions stored as files before the database are still read, updated
// (the update moves them into the database) and swept.
func TestSessionsStoredAsFilesAreStillRead(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	fs := st.Storage.(*certmagic.FileStorage)
	// A certmagic.Storage that is not *FileStorage writes files as before.
	old := &StorageStore{Storage: struct{ certmagic.Storage }{fs}, Namespace: st.Namespace, Now: st.Now}
	legacy := &Session{UniqueID: NewID(), Token: "old", Ref: "legacy", ExpiresAt: now.Add(time.Hour)}
	expired := &Session{UniqueID: NewID(), Ref: "gone", ExpiresAt: now.Add(-30 * 24 * time.Hour)}
	for _, s := range []*Session{legacy, expired} {
		if err := old.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := st.LoadByRef(ctx, "legacy"); err != nil || got.Token != "old" {
		t.Fatalf("a session stored as a file: %+v %v", got, err)
	}
	if _, err := st.Update(ctx, legacy.UniqueID, func(s *Session) (bool, error) {
		s.Status = "DONE"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Load(ctx, legacy.UniqueID); err != nil || got.Status != "DONE" || got.Token != "old" {
		t.Fatalf("after an update: %+v %v", got, err)
	}
	if n, err := st.Sweep(ctx, 7*24*time.Hour); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want the expired file session deleted", n, err)
	}
	if _, err := st.LoadByRef(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the expired file session survived: %v", err)
	}
}

// Concurrent updates of one session lose nothing, and concurrent creates
// are all stored (they share commits).
func TestConcurrentCreatesAndUpdates(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Session{UniqueID: NewID(), Ref: "ref-" + itoa(i), ExpiresAt: now.Add(time.Hour)}
			if err := st.Create(ctx, s); err != nil {
				t.Error(err)
			}
			ids[i] = s.UniqueID
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Update(ctx, ids[0], func(s *Session) (bool, error) {
				s.Events = append(s.Events, Event{Key: itoa(i)})
				return true, nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if got, err := st.LoadByRef(ctx, "ref-"+itoa(i)); err != nil || got.UniqueID != ids[i] {
			t.Fatalf("session %d: %v %v", i, got, err)
		}
	}
	if got, _ := st.Load(ctx, ids[0]); len(got.Events) != n {
		t.Fatalf("%d concurrent updates kept %d events", n, len(got.Events))
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
