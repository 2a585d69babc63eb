// Package shutdown runs a built caddy binary with open event streams and
// stops it with a real SIGTERM.
package shutdown

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const streams = 1000

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestSIGTERMWithOpenStreams: with 1000 open /api/session/events streams
// and a grace period of an hour, SIGTERM still stops the process: the
// streams end when the server starts shutting down instead of holding it
// for the whole grace period (or forever without one). The wait is a
// generous bound for a loaded machine, far below the grace period.
func TestSIGTERMWithOpenStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("builds caddy")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "caddy")
	build := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./cmd/caddy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	site, sandbox := freePort(t), freePort(t)
	caddyfile := filepath.Join(dir, "Caddyfile")
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %s
	grace_period 1h
	log default {
		level ERROR
	}
}
http://127.0.0.1:%d {
	idv {
		incode {
			api_url http://127.0.0.1:%d
			api_key k
			flow_id f
			client_id c
		}
		session_quota off
	}
	respond "frontend"
}
http://127.0.0.1:%d {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
		}
	}
}
`, filepath.Join(dir, "storage"), site, sandbox, sandbox)
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", site)
	tr := &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("caddy did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 1000 browsers, each with its own session and stream.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := make(chan error, streams)
	ended := make(chan error, streams)
	sem := make(chan struct{}, 25)
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Transport: tr, Jar: jar}
			resp, err := c.Get(base + "/api/start")
			if err != nil {
				<-sem
				opened <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/session/events", nil)
			resp, err = c.Do(req)
			<-sem
			if err != nil || resp.StatusCode != 200 {
				opened <- fmt.Errorf("stream: %v %v", err, resp)
				return
			}
			sc := bufio.NewScanner(resp.Body)
			if !sc.Scan() || !strings.HasPrefix(sc.Text(), "event: status") {
				opened <- fmt.Errorf("no first event: %q %v", sc.Text(), sc.Err())
				return
			}
			opened <- nil
			for sc.Scan() {
			}
			resp.Body.Close()
			ended <- sc.Err()
		}()
	}
	for i := 0; i < streams; i++ {
		if err := <-opened; err != nil {
			t.Fatalf("opening stream %d: %v", i, err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		b, _ := os.ReadFile(logPath)
		t.Fatalf("caddy with %d open streams did not exit after SIGTERM (grace period 1h)\n%s", streams, b)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("exit code %d\n%s", code, b)
	}
	// Every stream was ended by the server, cleanly (a complete chunked
	// response), not cut by a closing process.
	for i := 0; i < streams; i++ {
		if err := <-ended; err != nil {
			t.Fatalf("stream %d ended with %v", i, err)
		}
	}
	wg.Wait()
}
