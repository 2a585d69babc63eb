package session

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// groupCommit is the session database's writer. Every write waits for
// its own durable commit, but the writes of concurrent requests share it:
// the calls that arrive while a commit is syncing are the next
// transaction, so under load a commit (two fdatasyncs in bbolt, each
// costing a few hundred µs of CPU on a virtual disk besides the wait)
// carries many sessions, and with no load a write commits at once.
//
// bbolt's own db.Batch closes a batch MaxBatchDelay after its first call
// and queues it behind the running commit, so under load several small
// batches wait in line and each pays its own syncs: with 50 concurrent
// /api/start requests it committed 1.3 sessions per transaction, 1.5
// fdatasyncs per session, where this commits about 20, 0.1 fdatasync per
// session (see bench/analysis.md).
type groupCommit struct {
	db *bolt.DB

	// wmu is held by a write transaction from its start until the indexes
	// show what it committed; cur is that transaction's index changes.
	wmu sync.Mutex
	cur *txState

	mu      sync.Mutex
	pending []gcCall
	running bool          // a committer goroutine is active
	full    chan struct{} // closed when pending reaches GroupCommitFull during a linger

	commits, writes, maxBatch atomic.Int64
}

type gcCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// GroupCommitLinger is how long a commit that follows another at once
// waits for more writes to join it (at most; it stops waiting when
// GroupCommitFull are waiting). A write after a quiet moment never waits:
// only a commit that found writes already queued is a sign of load. Under
// load a longer linger trades a little latency for fewer syncs per
// session, which on a shared machine is CPU given back to the requests.
var GroupCommitLinger = 2 * time.Millisecond

// GroupCommitFull is the batch size that ends a linger, and the most
// calls in one transaction.
const GroupCommitFull = 256

// errRunAlone tells a call that its batch failed because of it: it runs
// again in a transaction of its own.
var errRunAlone = errors.New("session: run the write in its own transaction")

// do runs fn in a write transaction and returns once that transaction is
// durable (or failed). fn may run more than once (after a failed batch);
// it must not keep state between runs.
func (g *groupCommit) do(fn func(*bolt.Tx) error) error {
	c := gcCall{fn: fn, err: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if len(g.pending) == GroupCommitFull && g.full != nil {
		close(g.full)
		g.full = nil
	}
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	err := <-c.err
	if err == errRunAlone {
		err = g.update(func(tx *bolt.Tx) error { return safeCall(fn, tx) })
		g.commits.Add(1)
		g.writes.Add(1)
	}
	return err
}

// run commits batches until none is waiting.
func (g *groupCommit) run() {
	lingered := false
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		// Writes queued during the last commit: more are coming. Give
		// them a moment to join this one (once per commit).
		if lingered && len(g.pending) < GroupCommitFull && GroupCommitLinger > 0 {
			full := make(chan struct{})
			g.full = full
			g.mu.Unlock()
			t := time.NewTimer(GroupCommitLinger)
			select {
			case <-full:
			case <-t.C:
			}
			t.Stop()
			g.mu.Lock()
			if g.full == full {
				g.full = nil
			}
		}
		n := min(len(g.pending), GroupCommitFull)
		calls := append([]gcCall(nil), g.pending[:n]...)
		g.pending = append(g.pending[:0], g.pending[n:]...)
		g.mu.Unlock()
		g.commit(calls)
		lingered = true
	}
}

// commit runs calls in one transaction; a call whose fn fails is taken
// out and told to run alone, and the rest run again without it.
func (g *groupCommit) commit(calls []gcCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].err <- errRunAlone
			calls = append(calls[:failed], calls[failed+1:]...)
			continue
		}
		g.commits.Add(1)
		g.writes.Add(int64(len(calls)))
		for m := g.maxBatch.Load(); int64(len(calls)) > m && !g.maxBatch.CompareAndSwap(m, int64(len(calls))); m = g.maxBatch.Load() {
		}
		for _, c := range calls {
			c.err <- err
		}
		return
	}
}

// update runs fn in a write transaction and, once it committed, applies
// the index changes its writes staged. Every write transaction of the
// session database goes through it.
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	ts := &txState{ids: map[idxKey]*logEntry{}, refs: map[idxKey]*[16]byte{}}
	g.cur = ts
	staged := false
	err := g.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		staged = true
		return nil
	})
	g.cur = nil
	switch {
	case err == nil:
		ts.apply()
	case staged:
		// The commit failed, possibly after making its pages visible.
		for _, x := range ts.seen {
			x.reload(g.db)
		}
	}
	return err
}

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("session: panic in a database write: %v", p)
		}
	}()
	return fn(tx)
}

// WriteStats counts what the session database has committed.
type WriteStats struct {
	Commits  int64 // durable write transactions of the store's writes
	Writes   int64 // Create and Update calls committed
	MaxBatch int64 // most calls in one transaction
	Pages    int64 // database pages written (every transaction)
}

// SyncsPerCommit is how many fdatasyncs a bbolt commit costs: the pages,
// then the meta page (bench/analysis.md checks it with strace).
const SyncsPerCommit = 2

// WriteStats reports the counts of the store's database since it was
// opened; on other storages they are zero.
func (st *StorageStore) WriteStats() WriteStats {
	if st.init() != nil || st.gc == nil {
		return WriteStats{}
	}
	s := st.db.Stats()
	return WriteStats{Commits: st.gc.commits.Load(), Writes: st.gc.writes.Load(), MaxBatch: st.gc.maxBatch.Load(),
		Pages: s.TxStats.GetWrite()}
}
