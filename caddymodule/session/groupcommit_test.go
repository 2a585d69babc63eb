package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	bolt "go.etcd.io/bbolt"
)

// queued waits until n calls wait for the committer.
func queued(g *groupCommit, n int) {
	for {
		g.mu.Lock()
		k := len(g.pending)
		g.mu.Unlock()
		if k >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// holdCommit starts a commit that stays in progress until the returned
// channel is closed, so that the writes started meanwhile queue behind it.
func holdCommit(t *testing.T, st *StorageStore) chan struct{} {
	t.Helper()
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = st.commit(func(tx *bolt.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	return hold
}

// Writes that arrive while a commit is in progress share the next one: n
// creates queued behind a held commit take one more commit, not n, and
// each is durable (readable through a second open of the file) when its
// Create returns.
func TestCreatesQueuedDuringACommitShareTheNext(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	hold := holdCommit(t, st)
	before := st.WriteStats()
	const n = 40
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Session{UniqueID: NewID(), Ref: "q-" + itoa(i), ExpiresAt: now.Add(time.Hour)}
			if err := st.Create(ctx, s); err != nil {
				t.Error(err)
			}
			ids[i] = s.UniqueID
		}()
	}
	queued(st.gc, n)
	close(hold)
	wg.Wait()
	after := st.WriteStats()
	// The held commit, then one for the 40 (GroupCommitFull is larger).
	if c := after.Commits - before.Commits; c != 2 {
		t.Fatalf("%d queued creates took %d commits, want them in one after the held one", n, c-1)
	}
	if after.MaxBatch < n {
		t.Fatalf("largest transaction: %d calls, want %d", after.MaxBatch, n)
	}
	for i, id := range ids {
		if got, err := st.LoadByRef(ctx, "q-"+itoa(i)); err != nil || got.UniqueID != id {
			t.Fatalf("session %d: %v %v", i, got, err)
		}
	}
}

// A write whose function fails in a shared transaction gets its own error,
// and the others in that transaction are committed without it; a panic is
// an error, not a crash of the committer.
func TestAFailingWriteDoesNotFailItsBatch(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	hold := holdCommit(t, st)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	var badErr, panicErr error
	var runs atomic.Int32
	wg.Add(2)
	go func() {
		defer wg.Done()
		badErr = st.commit(func(tx *bolt.Tx) error { runs.Add(1); return boom })
	}()
	go func() {
		defer wg.Done()
		panicErr = st.commit(func(tx *bolt.Tx) error { panic("bad write") })
	}()
	good := make([]*Session, 10)
	for i := range good {
		good[i] = &Session{UniqueID: NewID(), Ref: "g-" + itoa(i), ExpiresAt: now.Add(time.Hour)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Create(ctx, good[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	queued(st.gc, 12)
	close(hold)
	wg.Wait()
	if !errors.Is(badErr, boom) {
		t.Errorf("the failing write: %v, want its own error", badErr)
	}
	if runs.Load() < 2 {
		t.Errorf("the failing write ran %d times, want again alone after the batch", runs.Load())
	}
	if panicErr == nil {
		t.Error("a panicking write reported success")
	}
	for i, s := range good {
		if got, err := st.LoadByRef(ctx, "g-"+itoa(i)); err != nil || got.UniqueID != s.UniqueID {
			t.Fatalf("session %d beside the failing write: %v %v", i, got, err)
		}
	}
	// The committer still works.
	if err := st.Create(ctx, &Session{UniqueID: NewID(), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// Updates of one session queued in one transaction see each other's
// changes (each reads the session inside the shared transaction).
func TestUpdatesInOneBatchSeeEachOther(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), Ref: "u", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	hold := holdCommit(t, st)
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Update(ctx, s.UniqueID, func(s *Session) (bool, error) {
				s.Events = append(s.Events, Event{Key: itoa(i)})
				return true, nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	queued(st.gc, n)
	close(hold)
	wg.Wait()
	got, err := st.Load(ctx, s.UniqueID)
	if err != nil || len(got.Events) != n {
		t.Fatalf("%d updates in one transaction kept %v events (%v)", n, got, err)
	}
}

// The writability probe on a storage without a cheap probe writes one
// record for the requests that find it due together, and a failing probe
// is reported to every caller (never taken from an earlier success).
func TestWritableProbesOnceForConcurrentCallers(t *testing.T) {
	dir := t.TempDir()
	cs := &countingStorage{FileStorage: &certmagic.FileStorage{Path: dir}}
	st := &StorageStore{Storage: cs, Namespace: "p"}
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Writable(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// At most one per probeEvery that passed (a very slow machine may
	// see a second).
	if n, most := cs.stores.Load(), int64(time.Since(start)/probeEvery)+1; n > most {
		t.Fatalf("50 concurrent callers wrote %d probes, want at most %d", n, most)
	}
	bad := &StorageStore{Storage: &countingStorage{FileStorage: &certmagic.FileStorage{Path: dir}, fail: true}, Namespace: "p"}
	for range 3 {
		if err := bad.Writable(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a failing probe: %v", err)
		}
	}
}

type countingStorage struct {
	*certmagic.FileStorage
	stores atomic.Int64
	fail   bool
}

func (c *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	c.stores.Add(1)
	if c.fail {
		return errors.New("disk full")
	}
	return c.FileStorage.Store(ctx, key, value)
}

// On a storage that probes itself (idv_redis), the callers that arrive
// while a probe is in flight share it; its failure reaches all of them,
// and the next caller probes again.
func TestWriteProbeIsSharedInFlight(t *testing.T) {
	pr := &blockingProber{release: make(chan error)}
	st := &StorageStore{Storage: pr, Namespace: "p"}
	ctx := context.Background()
	for _, want := range []error{nil, errors.New("READONLY")} {
		const n = 20
		errs := make(chan error, n)
		go func() { errs <- st.Writable(ctx) }()
		waiting := func() int {
			st.probeMu.Lock()
			defer st.probeMu.Unlock()
			if st.probing == nil {
				return -1
			}
			return st.probing.waiters
		}
		for waiting() < 0 {
			time.Sleep(time.Millisecond)
		}
		for range n - 1 {
			go func() { errs <- st.Writable(ctx) }()
		}
		for waiting() < n-1 {
			time.Sleep(time.Millisecond)
		}
		pr.release <- want
		for range n {
			err := <-errs
			if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, ErrUnavailable)) {
				t.Fatalf("probe result %v reached a caller as %v", want, err)
			}
		}
	}
	if c := pr.calls.Load(); c != 2 {
		t.Fatalf("%d probes for two rounds of 20 concurrent callers, want 2", c)
	}
}

type blockingProber struct {
	certmagic.Storage
	release chan error
	calls   atomic.Int64
}

func (b *blockingProber) ProbeWrite(ctx context.Context) error {
	b.calls.Add(1)
	return <-b.release
}
