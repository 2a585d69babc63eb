package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	_ "github.com/caddy-idv/caddy-idv" // the idv handler, providers and sandbox

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.Main(m)) }

// rootCaddyfile is the repository's Caddyfile made runnable by testcaddy:
// without its global options block (testcaddy writes its own), with free
// ports instead of 8080 (@@site@@) and 8081 (@@sandbox@@), and with the
// demo's root made absolute (tests run in internal/e2e).
func rootCaddyfile(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile("../../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	body, err := dropGlobalOptions(string(src))
	if err != nil {
		t.Fatalf("../../Caddyfile: %v", err)
	}
	for port, name := range map[string]string{"8080": "@@site@@", "8081": "@@sandbox@@"} {
		if !strings.Contains(body, port) {
			t.Fatalf("../../Caddyfile no longer mentions port %s: update this test", port)
		}
		body = strings.ReplaceAll(body, port, name)
	}
	// Further sandboxes (one per provider), when there are.
	for port, name := range map[string]string{"8082": "@@sandbox2@@", "8083": "@@sandbox3@@"} {
		body = strings.ReplaceAll(body, port, name)
	}
	demo, err := filepath.Abs("../../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	rootRe := regexp.MustCompile(`(?m)^([ \t]*root[ \t]+\*[ \t]+)examples/demo[ \t]*$`)
	if !rootRe.MatchString(body) {
		t.Fatalf("../../Caddyfile has no line `root * examples/demo`: update this test")
	}
	body = rootRe.ReplaceAllStringFunc(body, func(m string) string { return rootRe.FindStringSubmatch(m)[1] + demo })
	// Imports are relative to the Caddyfile, which is not where this runs.
	examples := filepath.Dir(demo)
	if !strings.Contains(body, "import examples/") {
		t.Fatalf("../../Caddyfile no longer imports examples/log-filters.caddy: update this test")
	}
	return strings.ReplaceAll(body, "import examples/", "import "+examples+"/")
}

// dropGlobalOptions removes the global options block: a `{ ... }` that comes
// before anything else but comments.
func dropGlobalOptions(src string) (string, error) {
	lines := strings.SplitAfter(src, "\n")
	first := -1
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if s == "{" {
			first = i
		}
		break
	}
	if first < 0 {
		return src, nil
	}
	depth := 0
	for i := first; i < len(lines); i++ {
		code, _, _ := strings.Cut(lines[i], "#")
		depth += strings.Count(code, "{") - strings.Count(code, "}")
		if depth == 0 {
			return strings.Join(lines[:first], "") + strings.Join(lines[i+1:], ""), nil
		}
	}
	return "", fmt.Errorf("the global options block is not closed")
}

func TestDropGlobalOptions(t *testing.T) {
	in := "# comment\n{\n\tadmin off\n\tlog {\n\t\tlevel INFO # {x}\n\t}\n}\n\n:80 {\n\trespond {$X}\n}\n"
	got, err := dropGlobalOptions(in)
	if err != nil || got != "# comment\n\n:80 {\n\trespond {$X}\n}\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if got, _ := dropGlobalOptions(":80 {\n}\n"); got != ":80 {\n}\n" {
		t.Fatalf("a Caddyfile without global options changed: %q", got)
	}
	if _, err := dropGlobalOptions("{\n\tadmin off\n"); err == nil {
		t.Fatal("an unclosed block was accepted")
	}
}

// sandboxCalls reads the sandbox's call counters.
func sandboxCalls(t testing.TB, in *testcaddy.Instance) map[string]int {
	t.Helper()
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("sandbox", "/__sandbox/calls"), nil)
	if status != http.StatusOK {
		t.Fatalf("GET /__sandbox/calls: %d %s", status, body)
	}
	var out struct {
		Calls map[string]int `json:"calls"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /__sandbox/calls: %v: %s", err, body)
	}
	return out.Calls
}

// checkCalls asserts what the sidecar asked the provider during the whole
// run: exactly starts sessions (omni/start), and never an API key on a
// /0/omni call (those carry the session token only).
func checkCalls(t testing.TB, in *testcaddy.Instance, starts int) {
	t.Helper()
	calls := sandboxCalls(t, in)
	keys := make([]string, 0, len(calls))
	n := 0
	for k, v := range calls {
		keys = append(keys, fmt.Sprintf("%s=%d", k, v))
		if strings.HasPrefix(k, "incode omni/start ") {
			n += v
		}
		if strings.Contains(k, "0/omni") && strings.Contains(k, "api_key") {
			t.Errorf("an API key was sent to a /0/omni endpoint: %q (%d calls)", k, v)
		}
	}
	sort.Strings(keys)
	if n != starts {
		t.Errorf("omni/start calls: got %d, want %d", n, starts)
	}
	if t.Failed() {
		t.Logf("sandbox calls: %s", strings.Join(keys, ", "))
	}
}

// dumpLogs logs the end of Caddy's log when the test failed.
func dumpLogs(t testing.TB, in *testcaddy.Instance) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		lines := strings.Split(strings.TrimSpace(in.Logs()), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("caddy log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
	})
}
