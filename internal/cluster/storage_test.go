package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sandboxStarts reads how many omni/start calls (billable sessions) the
// sandbox at port has served.
func sandboxStarts(t *testing.T, port int) int {
	t.Helper()
	a := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/__sandbox/calls", port), "")
	m := a.json(t)
	calls, _ := m["calls"].(map[string]any)
	n, _ := calls["incode omni/start api_key"].(float64)
	return int(n)
}

func cookieOf(a answer) string {
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "idv_session" {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// TestRedisOutageBillsNothing: with the shipped node Caddyfile on a Redis
// that is then killed, /api/start and /api/onboarding-url answer 503 JSON
// with Retry-After before any provider call (no omni/start is billed), a
// browser holding a session cookie gets 503 and not a new session, and
// service resumes once Redis is back.
func TestRedisOutageBillsNothing(t *testing.T) {
	RequireRedisServer(t)
	root := repoRoot(t)
	bin := buildCaddy(t, root)
	rd := StartRedis(t)
	port := map[string]int{}
	for _, n := range []string{"sandbox", "node", "admin-sandbox", "admin-node"} {
		port[n] = FreePort(t)
	}
	env := func(extra map[string]string) map[string]string {
		e := map[string]string{"SANDBOX_PORT": fmt.Sprint(port["sandbox"]), "LB_PORT": fmt.Sprint(port["node"]),
			"REDIS_ADDR": rd.Addr, "REDIS_USERNAME": "", "REDIS_PASSWORD": "", "IDV_WEBHOOK_SECRET": webhookSecret}
		for k, v := range extra {
			e[k] = v
		}
		return e
	}
	sandbox := newProc(t, "sandbox", bin, root, "sandbox.Caddyfile", port["sandbox"], "",
		env(map[string]string{"ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", port["admin-sandbox"])}))
	node := newProc(t, "node", bin, root, "node.Caddyfile", port["node"], "node n",
		env(map[string]string{"NODE_NAME": "n", "NODE_PORT": fmt.Sprint(port["node"]), "ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", port["admin-node"])}))
	sandbox.start()
	node.start()
	url := func(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port["node"], path) }

	st := do(t, "GET", url("/api/start"), "")
	cookie := cookieOf(st)
	if st.status != http.StatusOK || cookie == "" {
		t.Fatalf("start with Redis up: %d %s", st.status, st.body)
	}
	billed := sandboxStarts(t, port["sandbox"])

	rd.Kill()
	for _, tc := range []struct {
		path   string
		header []string
	}{
		{"/api/start", nil},
		{"/api/start?new=1", nil},
		{"/api/onboarding-url", nil},
		{"/api/start", []string{"Cookie", cookie}},
		{"/api/onboarding-url", []string{"Cookie", cookie}},
		{"/api/session", []string{"Cookie", cookie}},
	} {
		a := do(t, "GET", url(tc.path), "", tc.header...)
		m := a.json(t)
		if a.status != http.StatusServiceUnavailable || m["success"] != false || !strings.Contains(fmt.Sprint(m["error"]), "storage is unavailable") {
			t.Errorf("%s %v with Redis down: %d %s, want 503 JSON", tc.path, tc.header, a.status, a.body)
		}
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s %v: 503 without Retry-After", tc.path, tc.header)
		}
		if c := cookieOf(a); c != "" {
			t.Errorf("%s %v with Redis down set a cookie %q", tc.path, tc.header, c)
		}
	}
	if n := sandboxStarts(t, port["sandbox"]); n != billed {
		t.Fatalf("with Redis down the provider billed %d new sessions", n-billed)
	}

	rd.Restart(t)
	// Connections the pool held to the dead server fail once each before
	// they are replaced: the client retries as Retry-After says.
	var back answer
	for i := 0; i < 20; i++ {
		if back = do(t, "GET", url("/api/start"), ""); back.status != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if back.status != http.StatusOK {
		t.Fatalf("start once Redis is back: %d %s", back.status, back.body)
	}
	if n := sandboxStarts(t, port["sandbox"]); n != billed+1 {
		t.Fatalf("once Redis is back: %d omni/start calls, want %d", n, billed+1)
	}
}

// crashCaddyfile is a node on Caddy's default storage, the file system.
const crashCaddyfile = `{
	admin off
	storage file_system {$STORAGE_DIR}
}
:{$NODE_PORT} {
	idv {
		incode {
			api_url http://127.0.0.1:{$SANDBOX_PORT}
			api_key sandbox-key
			flow_id sandbox-flow
			client_id sandbox-client
			admin_email admin@sandbox.test
			admin_password sandbox-password
		}
		webhook_auth header X-Webhook-Secret {env.IDV_WEBHOOK_SECRET}
		session_quota off
	}
	respond "node {$NODE_NAME}"
}
`

// TestFileStorageSurvivesKill9UnderLoad: a node on the file storage serves
// /api/start and /api/onboarding-url to concurrent clients and is killed
// with SIGKILL while they run. After a restart every uniqueId it answered
// resumes with its token, and every interviewId it answered is found by
// its webhook: an answer is only sent once the session and its index are
// durable (one batched, fsync'd bbolt transaction).
func TestFileStorageSurvivesKill9UnderLoad(t *testing.T) {
	root := repoRoot(t)
	bin := buildCaddy(t, root)
	port := map[string]int{}
	for _, n := range []string{"sandbox", "node", "admin-sandbox"} {
		port[n] = FreePort(t)
	}
	cfgFile := filepath.Join(t.TempDir(), "node.Caddyfile")
	if err := os.WriteFile(cfgFile, []byte(crashCaddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SANDBOX_PORT": fmt.Sprint(port["sandbox"]), "LB_PORT": fmt.Sprint(port["node"]),
		"NODE_PORT": fmt.Sprint(port["node"]), "NODE_NAME": "crash", "STORAGE_DIR": t.TempDir(),
		"IDV_WEBHOOK_SECRET": webhookSecret, "ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", port["admin-sandbox"])}
	sandbox := newProc(t, "sandbox", bin, root, "sandbox.Caddyfile", port["sandbox"], "", env)
	node := newProc(t, "node", bin, root, "node.Caddyfile", port["node"], "node crash", env)
	node.config = cfgFile
	sandbox.start()
	node.start()
	url := func(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port["node"], path) }

	type started struct{ id, token, interview string }
	var (
		mu       sync.Mutex
		answered []started
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	const workers, killAfter = 12, 150
	killed := make(chan struct{})
	var once sync.Once
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			path := "/api/start"
			if w%2 == 1 {
				path = "/api/onboarding-url"
			}
			for !stop.Load() {
				resp, err := client.Get(url(path))
				if err != nil {
					return // the node is gone
				}
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				a := answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
				if rerr != nil {
					continue // cut off by the kill: never answered
				}
				if a.status != http.StatusOK {
					continue
				}
				m := jsonOrNil(a.body)
				if m == nil {
					continue // cut off by the kill: never answered
				}
				s := started{id: fmt.Sprint(m["uniqueId"]), token: fmt.Sprint(m["token"])}
				if iv, ok := m["interviewId"].(string); ok {
					s.interview = iv
				}
				mu.Lock()
				answered = append(answered, s)
				n := len(answered)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() {
						node.kill() // SIGKILL while the other workers' requests are in flight
						close(killed)
					})
				}
			}
		}(w)
	}
	<-killed
	stop.Store(true)
	wg.Wait()
	node.start()

	mu.Lock()
	defer mu.Unlock()
	withInterview := 0
	for _, s := range answered {
		r := do(t, "GET", url("/api/start?uniqueId="+s.id), "")
		if r.status != http.StatusOK {
			t.Errorf("answered session %s did not resume after kill -9: %d %s", s.id, r.status, r.body)
			continue
		}
		if m := r.json(t); m["uniqueId"] != s.id || m["token"] != s.token {
			t.Errorf("session %s resumed as another: %s", s.id, r.body)
		}
		if s.interview == "" {
			continue
		}
		withInterview++
		hook := `{"interviewId":"` + s.interview + `","onboardingStatus":"ID_VALIDATION_FINISHED"}`
		if r := do(t, "POST", url("/api/webhook"), hook, "X-Webhook-Secret", webhookSecret); r.status != http.StatusOK {
			t.Errorf("webhook for %s: %d %s", s.interview, r.status, r.body)
			continue
		}
		r = do(t, "GET", url("/api/session"), "", "Cookie", "idv_session="+s.id)
		m := r.json(t)
		if evs, _ := m["events"].([]any); r.status != http.StatusOK || len(evs) != 1 {
			t.Errorf("the webhook for interview %s did not find its session after kill -9: %d %s", s.interview, r.status, r.body)
		}
	}
	if len(answered) < killAfter || withInterview == 0 {
		t.Fatalf("only %d answers (%d with an interviewId) before the kill", len(answered), withInterview)
	}
	t.Logf("%d answered sessions (%d from onboarding-url) all survived kill -9", len(answered), withInterview)
}

// jsonOrNil decodes a complete JSON object, or returns nil.
func jsonOrNil(body string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return nil
	}
	return m
}
