package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/caddyserver/certmagic"
)

// fileWriter writes session records into certmagic's file storage layout
// (the same files certmagic.FileStorage reads, so nothing migrates and
// several processes sharing the directory still see each other's
// sessions), but without one fsync per file: each write is a temporary
// file renamed into place, and the writers of concurrent requests then
// share one flush of the whole file system (group commit, see groupSync).
// A record is durable when write returns, exactly as with FileStorage.Store
// (which fsyncs the file but not its directory; the shared flush covers the
// rename too).
type fileWriter struct {
	fs   *certmagic.FileStorage
	sync *groupSync
	dirs sync.Map // directories known to exist
}

// newFileWriter returns the writer for fs, or nil where the platform has
// no whole-file-system flush (the caller then uses fs.Store).
func newFileWriter(fs *certmagic.FileStorage) *fileWriter {
	if !haveSyncfs {
		return nil
	}
	return &fileWriter{fs: fs, sync: syncerFor(fs.Path)}
}

// put writes every key, then waits for one shared flush covering them all.
func (w *fileWriter) put(ctx context.Context, keys []string, values [][]byte) error {
	for i, key := range keys {
		if err := w.writeFile(w.fs.Filename(key), values[i]); err != nil {
			return err
		}
	}
	return w.sync.wait()
}

func (w *fileWriter) writeFile(name string, value []byte) error {
	dir := filepath.Dir(name)
	if _, ok := w.dirs.Load(dir); !ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		w.dirs.Store(dir, struct{}{})
	}
	// The temporary name starts with a dot: listings of the directory
	// (the sweep's) skip what is not a session.
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		w.dirs.Delete(dir) // removed meanwhile? retried next time
		return err
	}
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// groupSync coalesces the flushes of concurrent writers: a writer needs a
// flush that starts after its own writes; whoever finds no flush running
// starts one, and everybody who wrote before it started is covered by it.
// Under load one flush serves every request that arrived while the
// previous one ran, so the disk's sync latency is paid once per batch, not
// once per file.
type groupSync struct {
	root      string
	mu        sync.Mutex
	cond      *sync.Cond
	running   bool
	started   uint64 // flushes started
	completed uint64 // flushes completed (all of those started, in order)
	lastErr   error  // result of the last completed flush
	arrived   uint64 // calls of wait (tests)
	flush     func(root string) error
}

var syncers sync.Map // root -> *groupSync

func syncerFor(root string) *groupSync {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	if g, ok := syncers.Load(abs); ok {
		return g.(*groupSync)
	}
	g := &groupSync{root: abs, flush: syncfs}
	g.cond = sync.NewCond(&g.mu)
	v, _ := syncers.LoadOrStore(abs, g)
	return v.(*groupSync)
}

// wait returns once a flush that started after the call has completed, with
// that flush's error.
func (g *groupSync) wait() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.arrived++
	need := g.started + 1 // a flush that has not started yet
	for g.completed < need {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		g.mu.Unlock()
		err := g.flush(g.root)
		g.mu.Lock()
		g.running = false
		g.completed = g.started
		g.lastErr = err
		g.cond.Broadcast()
	}
	if g.lastErr != nil {
		return fmt.Errorf("flushing the file system of %s: %w", g.root, g.lastErr)
	}
	return nil
}
