// Package cluster holds the multi-process cluster test (several caddy
// processes sharing sessions through Redis) and the helpers it shares with
// the redisstorage tests: starting a throwaway redis-server and picking free
// loopback ports.
package cluster

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RedisInstall is how to get redis-server, for failure messages.
const RedisInstall = "install it: apt-get install -y redis-server (Debian/Ubuntu), brew install redis (macOS), " +
	"or use a CI service image; then make sure redis-server is on PATH"

// RequireRedisServer returns the path of redis-server. When it is missing,
// the test fails under CI (CI is set) and is skipped otherwise.
func RequireRedisServer(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redis-server is not installed but CI is set: this test needs a real Redis; %s", RedisInstall)
	}
	t.Skipf("SKIPPED: redis-server is not installed, so this Redis-backed test did not run (%s)", RedisInstall)
	return ""
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis is a redis-server run by a test.
type Redis struct {
	Addr    string
	LogFile string
	bin     string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
}

// StartRedis starts a redis-server on a free loopback port with no
// persistence, waits until it answers PING and kills it when the test ends.
// Extra arguments (e.g. "--requirepass", "x") are passed to redis-server.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin := RequireRedisServer(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port := FreePort(t)
		r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), LogFile: filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)), bin: bin}
		r.args = append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", r.LogFile}, extra...)
		if lastErr = r.run(); lastErr != nil {
			continue
		}
		t.Cleanup(func() {
			r.Kill()
			if t.Failed() {
				t.Logf("redis-server log: %s", r.LogFile)
			}
		})
		return r
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func (r *Redis) run() error {
	cmd := exec.Command(r.bin, r.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %v", err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	if err := waitPing(r.Addr, exited, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-done
		log, _ := os.ReadFile(r.LogFile)
		return fmt.Errorf("%v; its log:\n%s", err, log)
	}
	r.cmd, r.done = cmd, done
	return nil
}

// Kill stops the server (SIGKILL) and waits for it to exit: a storage
// outage. Its data is gone (no persistence).
func (r *Redis) Kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Restart starts a new, empty server on the same address after Kill.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	if err := r.run(); err != nil {
		t.Fatalf("restarting redis-server: %v", err)
	}
}

// waitPing polls until the server answers PING (+PONG or a NOAUTH error,
// which also proves it is up), it exits, or the deadline passes.
func waitPing(addr string, exited <-chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s", addr)
}
