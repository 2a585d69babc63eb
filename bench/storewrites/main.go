// Command storewrites measures the session store alone on the default file
// storage: -c goroutines each create sessions (a session, its index and its
// expiry entry, as /api/start stores them) for -d, then it prints one JSON
// line for bench/run.sh with the sessions per second, the CPU time per
// session, and the commits and synced writes per session that the store
// counted. Those counts do not depend on how busy the machine is: they
// show whether concurrent creates share their syncs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

func main() {
	var (
		root = flag.String("root", "", "the file_system storage root (a directory on the disk under test)")
		conc = flag.Int("c", 50, "concurrent creators")
		dur  = flag.Duration("d", 3*time.Second, "how long")
		id   = flag.String("id", "storewrites", "the result's id")
		prof = flag.String("cpuprofile", "", "write a CPU profile of the timed part here")
	)
	flag.Parse()
	if *root == "" {
		fmt.Fprintln(os.Stderr, "storewrites: -root is required")
		os.Exit(2)
	}
	st := &session.StorageStore{Storage: &certmagic.FileStorage{Path: *root}, Namespace: "bench"}
	if err := st.Open(); err != nil {
		fail(err)
	}
	defer st.Close()
	ctx := context.Background()
	create := func() error {
		now := time.Now()
		s := &session.Session{UniqueID: session.NewID(), Provider: "incode", Token: token, Ref: session.NewID(),
			CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
		return st.Create(ctx, s)
	}
	// Warm up: the database file and its first pages exist before timing.
	for i := 0; i < 100; i++ {
		if err := create(); err != nil {
			fail(err)
		}
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	before := st.WriteStats()
	cpu0 := cpuTime()
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(*dur)
	start := time.Now()
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := create(); err != nil {
					fail(err)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	ws := st.WriteStats()
	sessions := n.Load()
	out := map[string]any{
		"kind": "storewrites", "id": *id, "concurrency": *conc, "sessions": sessions,
		"per_s":            float64(sessions) / elapsed.Seconds(),
		"cpu_us_per":       float64(cpu.Microseconds()) / float64(sessions),
		"commits":          ws.Commits - before.Commits,
		"commits_per":      float64(ws.Commits-before.Commits) / float64(sessions),
		"syncs_per":        float64(session.SyncsPerCommit*(ws.Commits-before.Commits)) / float64(sessions),
		"sessions_per_tx":  float64(ws.Writes-before.Writes) / float64(max(1, ws.Commits-before.Commits)),
		"pages_per":        float64(ws.Pages-before.Pages) / float64(sessions),
		"write_bytes_per":  float64(ws.Pages-before.Pages) * 4096 / float64(sessions),
		"max_sessions_tx":  ws.MaxBatch,
		"elapsed_s":        elapsed.Seconds(),
		"cpu_s":            cpu.Seconds(),
		"gomaxprocs_note":  "CPU is this process's user+system time",
		"storage_root_dir": "tmp",
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

// A session token of the sandbox's length, so records are the real size.
var token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE4MDQwMDYxOTgsImlhdCI6MTc5NjIzMDE5OCwic3ViIjoiOTMwMDcxNDc4YzAyYWJmYWM3MDJlMTU5IiwidHlwIjoic2Vzc2lvbiJ9.XUvQj3rfftuIRCIz41n1HQ2pZ5U1bduhiDUmOUZKE6I"

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "storewrites:", err)
	os.Exit(1)
}
