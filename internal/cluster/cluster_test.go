package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cluster test runs the shipped examples/cluster Caddyfiles as separate
// caddy processes: the sandbox, two idv nodes sharing one redis-server
// through the idv_redis storage, and a round-robin load balancer. Every port
// is free and passed through the environment, so the files are used as
// shipped.

const webhookSecret = "cluster-test-webhook-secret"

// repoRoot is the directory of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside the module")
	}
	return filepath.Dir(mod)
}

// buildCaddy builds ./cmd/caddy once per test binary, with -race when the
// test itself runs with it (the build cache then already holds every
// package).
var build struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

func buildCaddy(t *testing.T, root string) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-idv-cluster-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "caddy")
		// No symbol table or DWARF: a faster link; stack traces still work.
		args := []string{"build", "-ldflags=-s -w", "-o", build.bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/caddy")...)
		cmd.Dir = root
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", build.err, build.out)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}

// proc is one caddy process, restartable with the same configuration.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	root    string
	config  string
	env     []string
	port    int // the port that answers when it is ready
	ready   string
	LogFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newProc prepares a process with its own HOME and XDG directories.
func newProc(t *testing.T, name, bin, root, config string, port int, ready string, env map[string]string) *proc {
	home := t.TempDir()
	env["HOME"] = home
	env["XDG_DATA_HOME"] = filepath.Join(home, "data")
	env["XDG_CONFIG_HOME"] = filepath.Join(home, "config")
	var list []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, override := env[k]; !override {
			list = append(list, kv)
		}
	}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	p := &proc{t: t, name: name, bin: bin, root: root, config: filepath.Join(root, "examples", "cluster", config),
		env: list, port: port, ready: ready, LogFile: filepath.Join(logDir(t), name+".log")}
	t.Cleanup(p.kill)
	return p
}

// start runs the process and waits until GET / on its port answers a body
// starting with p.ready.
func (p *proc) start() {
	t := p.t
	t.Helper()
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "\n===== start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, "run", "--config", p.config)
	cmd.Dir = p.root
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	url := fmt.Sprintf("http://127.0.0.1:%d/", p.port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("%s exited while starting; log: %s\n%s", p.name, p.LogFile, tail(p.LogFile))
		default:
		}
		resp, err := quick.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(string(b), p.ready) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready on %s; log: %s\n%s", p.name, url, p.LogFile, tail(p.LogFile))
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		p.t.Fatalf("%s ignored SIGTERM; log: %s", p.name, p.LogFile)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Errorf("%s exited with %d after SIGTERM; log: %s\n%s", p.name, code, p.LogFile, tail(p.LogFile))
	}
}

// kill ends the process whatever happened (t.Cleanup).
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd != nil {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if p.t.Failed() {
		p.t.Logf("%s log: %s", p.name, p.LogFile)
	}
	if b, _ := os.ReadFile(p.LogFile); bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		p.t.Errorf("%s reported a data race; log: %s", p.name, p.LogFile)
	}
}

// logDir is where the process logs go: $IDV_CLUSTER_LOG_DIR when set (kept
// after the test, for debugging), else a temporary directory.
func logDir(t *testing.T) string {
	if d := os.Getenv("IDV_CLUSTER_LOG_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

var quick = &http.Client{Timeout: 2 * time.Second}

// client sends no cookies by itself: the test passes the session cookie
// explicitly, so which node saw which cookie is never in doubt.
var client = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("not JSON (%d): %s", a.status, a.body)
	}
	return m
}

func do(t *testing.T, method, url string, body string, header ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestClusterSharesSessionsAndWebhooks proves, with real processes:
//   - a session started at node a is resumed at node b by uniqueId with no
//     second omni/start at the provider, and a's cookie works at b;
//   - a webhook delivered to b (which reads the score from the sandbox) is
//     visible at a;
//   - through the round-robin lb, consecutive requests alternate between the
//     nodes and every one finds the session;
//   - SIGTERM and restart of a, then of b, lose nothing (session, cookie,
//     event), a redelivered webhook is recorded once, and while a node is
//     down the lb serves everything from the other;
//   - every process shuts down cleanly (exit 0) and, under -race, reports no
//     data race.
func TestClusterSharesSessionsAndWebhooks(t *testing.T) {
	RequireRedisServer(t) // skip (or fail under CI) before the build
	root := repoRoot(t)
	began := time.Now()
	bin := buildCaddy(t, root)
	t.Logf("caddy built in %v (race: %v)", time.Since(began).Round(time.Millisecond), raceEnabled)
	began = time.Now()
	defer func() { t.Logf("cluster scenario took %v", time.Since(began).Round(time.Millisecond)) }()
	rd := StartRedis(t)

	port := map[string]int{}
	for _, n := range []string{"sandbox", "lb", "a", "b", "admin-sandbox", "admin-lb", "admin-a", "admin-b"} {
		port[n] = FreePort(t)
	}
	common := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"SANDBOX_PORT":       fmt.Sprint(port["sandbox"]),
			"LB_PORT":            fmt.Sprint(port["lb"]),
			"NODE_A_PORT":        fmt.Sprint(port["a"]),
			"NODE_B_PORT":        fmt.Sprint(port["b"]),
			"REDIS_ADDR":         rd.Addr,
			"REDIS_USERNAME":     "",
			"REDIS_PASSWORD":     "",
			"IDV_WEBHOOK_SECRET": webhookSecret,
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	admin := func(name string) string { return fmt.Sprintf("127.0.0.1:%d", port["admin-"+name]) }
	sandbox := newProc(t, "sandbox", bin, root, "sandbox.Caddyfile", port["sandbox"], "",
		common(map[string]string{"ADMIN_ADDR": admin("sandbox")}))
	node := map[string]*proc{}
	for _, n := range []string{"a", "b"} {
		node[n] = newProc(t, "node-"+n, bin, root, "node.Caddyfile", port[n], "node "+n,
			common(map[string]string{"NODE_NAME": n, "NODE_PORT": fmt.Sprint(port[n]), "ADMIN_ADDR": admin(n)}))
	}
	lb := newProc(t, "lb", bin, root, "lb.Caddyfile", port["lb"], "node ",
		common(map[string]string{"ADMIN_ADDR": admin("lb")}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redis-server log: %s", rd.LogFile)
		}
	})

	sandbox.start()
	node["a"].start()
	node["b"].start()
	lb.start()

	url := func(name, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port[name], path) }
	starts := func() int {
		t.Helper()
		a := do(t, "GET", url("sandbox", "/__sandbox/calls"), "")
		var out struct {
			Calls map[string]int `json:"calls"`
		}
		if err := json.Unmarshal([]byte(a.body), &out); err != nil {
			t.Fatalf("sandbox calls: %d %s", a.status, a.body)
		}
		return out.Calls["incode omni/start api_key"]
	}
	if n := starts(); n != 0 {
		t.Fatalf("omni/start calls before any session: %d", n)
	}

	// 1. A session starts at node a.
	st := do(t, "GET", url("a", "/api/start"), "")
	if st.status != http.StatusOK {
		t.Fatalf("start at a: %d %s", st.status, st.body)
	}
	started := st.json(t)
	id, token := started["uniqueId"].(string), started["token"].(string)
	if id == "" || token == "" {
		t.Fatalf("start at a: %s", st.body)
	}
	var cookie string
	for _, c := range (&http.Response{Header: st.header}).Cookies() {
		if c.Name == "idv_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie != "idv_session="+id {
		t.Fatalf("start at a set cookie %q, want the session's", cookie)
	}
	ob := do(t, "GET", url("a", "/api/onboarding-url"), "", "Cookie", cookie)
	if ob.status != http.StatusOK {
		t.Fatalf("onboarding-url at a: %d %s", ob.status, ob.body)
	}
	interviewID, _ := ob.json(t)["interviewId"].(string)
	if interviewID == "" || ob.json(t)["uniqueId"] != id {
		t.Fatalf("onboarding-url at a did not answer for the session: %s", ob.body)
	}
	if n := starts(); n != 1 {
		t.Fatalf("omni/start calls after one session: %d", n)
	}

	// 2. Node b resumes it by uniqueId, with no new provider session.
	resume := func(at string) {
		t.Helper()
		r := do(t, "GET", url(at, "/api/start?uniqueId="+id), "")
		if r.status != http.StatusOK {
			t.Fatalf("resume at %s: %d %s", at, r.status, r.body)
		}
		if m := r.json(t); m["uniqueId"] != id || m["token"] != token {
			t.Fatalf("resume at %s answered another session: %s", at, r.body)
		}
	}
	resume("b")
	if n := starts(); n != 1 {
		t.Fatalf("resuming at b called omni/start: %d calls", n)
	}

	// 3. The cookie from a works at b.
	session := func(at, wantStatus string, wantEvents int) answer {
		t.Helper()
		r := do(t, "GET", url(at, "/api/session"), "", "Cookie", cookie)
		if r.status != http.StatusOK {
			t.Fatalf("/api/session at %s: %d %s", at, r.status, r.body)
		}
		m := r.json(t)
		evs, _ := m["events"].([]any)
		if m["uniqueId"] != id || m["status"] != wantStatus || len(evs) != wantEvents {
			t.Fatalf("/api/session at %s: want status %s with %d events, got %s", at, wantStatus, wantEvents, r.body)
		}
		return r
	}
	session("b", "STARTED", 0)

	// 4. A webhook delivered to b is visible at a.
	hook := `{"interviewId":"` + interviewID + `","onboardingStatus":"ONBOARDING_FINISHED"}`
	if r := do(t, "POST", url("b", "/api/webhook"), hook, "X-Webhook-Secret", "wrong"); r.status != http.StatusUnauthorized {
		t.Fatalf("webhook with a wrong secret at b: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", url("b", "/api/webhook"), hook, "X-Webhook-Secret", webhookSecret); r.status != http.StatusOK {
		t.Fatalf("webhook at b: %d %s", r.status, r.body)
	}
	finished := session("a", "ONBOARDING_FINISHED", 1).json(t)
	if finished["score"] == nil || finished["score"] == "" {
		t.Logf("note: the session has no score: %v", finished)
	}

	// 5. Through the load balancer, requests alternate between the nodes
	// and every one of them finds the session.
	throughLB := func(rounds int) {
		t.Helper()
		seen := map[string]int{}
		last := ""
		for i := 0; i < rounds; i++ {
			r := do(t, "GET", url("lb", "/"), "")
			if r.status != http.StatusOK || (r.body != "node a" && r.body != "node b") {
				t.Fatalf("GET / through the lb: %d %q", r.status, r.body)
			}
			s := do(t, "GET", url("lb", "/api/session"), "", "Cookie", cookie)
			if s.status != http.StatusOK || s.json(t)["status"] != "ONBOARDING_FINISHED" {
				t.Fatalf("/api/session through the lb (node %s): %d %s", s.header.Get("X-Idv-Node"), s.status, s.body)
			}
			for _, n := range []string{strings.TrimPrefix(r.body, "node "), s.header.Get("X-Idv-Node")} {
				if n == last {
					t.Fatalf("the lb sent two requests in a row to node %s", n)
				}
				last = n
				seen[n]++
			}
		}
		if seen["a"] != rounds || seen["b"] != rounds {
			t.Fatalf("the lb did not spread the requests evenly: %v", seen)
		}
	}
	throughLB(3)

	// 6. Node a stops and restarts: nothing is lost. While it is down the
	// lb sends everything to b.
	node["a"].stop()
	for i := 0; i < 4; i++ {
		s := do(t, "GET", url("lb", "/api/session"), "", "Cookie", cookie)
		if s.status != http.StatusOK || s.header.Get("X-Idv-Node") != "b" {
			t.Fatalf("/api/session through the lb with a down: %d %s %s", s.status, s.header.Get("X-Idv-Node"), s.body)
		}
	}
	node["a"].start()
	resume("a")
	session("a", "ONBOARDING_FINISHED", 1)
	// The provider retries its delivery to the restarted node: recorded once.
	if r := do(t, "POST", url("a", "/api/webhook"), hook, "X-Webhook-Secret", webhookSecret); r.status != http.StatusOK {
		t.Fatalf("repeated webhook at a: %d %s", r.status, r.body)
	}
	session("b", "ONBOARDING_FINISHED", 1)

	// 7. The same for node b.
	node["b"].stop()
	session("a", "ONBOARDING_FINISHED", 1)
	node["b"].start()
	resume("b")
	session("b", "ONBOARDING_FINISHED", 1)
	throughLB(2)

	if n := starts(); n != 1 {
		t.Fatalf("omni/start calls at the end: %d, want the first one only", n)
	}
	// Clean shutdowns, checked for their exit status.
	lb.stop()
	node["a"].stop()
	node["b"].stop()
	sandbox.stop()
}
