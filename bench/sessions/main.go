// Command sessions fills a file_system storage with n idv sessions. By
// default (-layout db) they go through session.StorageStore.Create into the
// session database, as the handler stores them, from enough goroutines
// that the group commit writes a few hundred per transaction. With
// -layout files they are written as the files of the layout before the
// database (idv/<namespace>/sessions/<uniqueId>.json and
// idv/<namespace>/refs/<hash>), which the store still reads.
// It then reads a sample back through session.StorageStore, so a change of
// layout fails here rather than silently measuring nothing. It writes the
// uniqueIds, one per line, to -ids and prints one JSON line for bench/run.sh.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

func main() {
	var (
		root = flag.String("root", "", "the file_system storage root (Caddy's `storage file_system <root>`)")
		ns   = flag.String("namespace", "bench", "the idv handler's storage_namespace")
		n    = flag.Int("n", 100, "how many sessions")
		ids  = flag.String("ids", "", "file to write the uniqueIds to")
		lay  = flag.String("layout", "db", "db (the session database) or files (the layout before it)")
		refs = flag.String("refs", "", "file to write \"uniqueId ref\" lines to (the database is locked while Caddy runs)")
	)
	flag.Parse()
	if *root == "" || *ids == "" {
		fmt.Fprintln(os.Stderr, "sessions: -root and -ids are required")
		os.Exit(2)
	}
	base := filepath.Join(*root, "idv", *ns)
	st := &session.StorageStore{Storage: &certmagic.FileStorage{Path: *root}, Namespace: *ns}
	defer st.Close()
	refOf := make(map[string]string, *n)
	var refMu sync.Mutex
	keep := func(s *session.Session) {
		refMu.Lock()
		refOf[s.UniqueID] = s.Ref
		refMu.Unlock()
	}
	write := func(id string, now time.Time) error { return writeFiles(base, id, now, keep) }
	workers := runtime.GOMAXPROCS(0) * 2
	switch *lay {
	case "db":
		write = func(id string, now time.Time) error {
			s := newSession(id, now)
			keep(s)
			return st.Create(context.Background(), s)
		}
		workers = session.GroupCommitFull * 2
	case "files":
		for _, d := range []string{"sessions", "refs"} {
			if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
				fail(err)
			}
		}
	default:
		fail(fmt.Errorf("-layout %q: want db or files", *lay))
	}

	all := make([]string, *n)
	for i := range all {
		all[i] = session.NewID()
	}
	now := time.Now().UTC()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(all); i += workers {
				if err := write(all[i], now); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fail(err)
	}
	elapsed := time.Since(start)

	// Read a sample back the way the handler does.
	for _, i := range []int{0, len(all) / 2, len(all) - 1} {
		s, err := st.Load(context.Background(), all[i])
		if err != nil {
			fail(fmt.Errorf("reading back session %s: %w", all[i], err))
		}
		if _, err := st.LoadByRef(context.Background(), s.Ref); err != nil {
			fail(fmt.Errorf("reading back ref of session %s: %w", all[i], err))
		}
	}
	if err := os.WriteFile(*ids, []byte(strings.Join(all, "\n")+"\n"), 0o600); err != nil {
		fail(err)
	}
	if *refs != "" {
		var b strings.Builder
		for _, id := range all {
			b.WriteString(id + " " + refOf[id] + "\n")
		}
		if err := os.WriteFile(*refs, []byte(b.String()), 0o600); err != nil {
			fail(err)
		}
	}
	out, _ := json.Marshal(map[string]any{"kind": "sessions", "namespace": *ns, "n": *n, "write_s": elapsed.Seconds()})
	fmt.Println(string(out))
}

// newSession is a session as the sandbox's /api/start makes them.
func newSession(id string, now time.Time) *session.Session {
	ref := randHex(12) // an Incode interviewId is 24 hex digits
	return &session.Session{
		UniqueID:  id,
		Provider:  "incode",
		Token:     fakeJWT(ref),
		Ref:       ref,
		CreatedAt: now,
		UpdatedAt: now,
		ExpiresAt: now.Add(24 * time.Hour),
	}
}

// writeFiles stores one session and its ref index as files, the layout
// before the session database.
func writeFiles(base, id string, now time.Time, keep func(*session.Session)) error {
	s := newSession(id, now)
	keep(s)
	ref := s.Ref
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "sessions", id+".json"), b, 0o600); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(ref))
	return os.WriteFile(filepath.Join(base, "refs", hex.EncodeToString(sum[:16])), []byte(id), 0o600)
}

// fakeJWT is a token of the size the sandbox mints (HS256, sub/typ/iat/exp).
func fakeJWT(sub string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := enc.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"iat":%d,"sub":%q,"typ":"session"}`,
		time.Now().Add(90*24*time.Hour).Unix(), time.Now().Unix(), sub)))
	sig := make([]byte, 32)
	_, _ = rand.Read(sig)
	return header + "." + claims + "." + enc.EncodeToString(sig)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sessions:", err)
	os.Exit(1)
}
