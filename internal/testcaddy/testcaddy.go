// Package testcaddy runs a real Caddy inside a test binary from a
// Caddyfile. Ports are chosen free at start (write @@NAME@@ where a port
// goes), so test packages that run in parallel under `go test ./...` never
// collide; the admin API is off; storage and Caddy's XDG directories are
// temporary, so tests never write into $HOME.
//
// Caddy is process-wide: one instance at a time per test binary. Do not call
// Start from parallel tests.
package testcaddy

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"

	// every module a test Caddyfile may use
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// Main sets XDG_CONFIG_HOME and XDG_DATA_HOME to a temporary directory for
// the whole test binary; call it from TestMain.
func Main(m interface{ Run() int }) int {
	if flag.Lookup("update") == nil { // for Golden
		flag.Bool("update", false, "rewrite the golden files in testdata")
	}
	dir, err := os.MkdirTemp("", "caddy-idv-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("HOME", dir) // anything else that looks for a home stays here too
	// Caddy computes this path when its package initialises, before any
	// environment change here can take effect.
	caddy.ConfigAutosavePath = filepath.Join(dir, "config", "caddy", "autosave.json")
	code := m.Run()
	_ = caddy.Stop()
	os.RemoveAll(dir)
	return code
}

// MainQuickRefresh is Main for the providers' journeys: refreshes are rate
// limited per session, and tests that poll GET /api/session for an outcome
// need not wait seconds between them.
func MainQuickRefresh(m interface{ Run() int }) int {
	provider.RefreshEvery = 100 * time.Millisecond
	return Main(m)
}

// Instance is a running Caddy.
type Instance struct {
	t     testing.TB
	Ports map[string]int
	// Storage is the file_system storage root.
	Storage string
	// LogFile receives Caddy's logs when Options.LogFile is set.
	LogFile string
	// Config is the adapted JSON.
	Config []byte
	global string // the global options block Start wrote, kept by Reload
}

// Options adjust the global options block.
type Options struct {
	// Global is added inside the global options block.
	Global string
	// Debug turns on debug logging.
	Debug bool
	// LogFile sends every log (default logger) to a file in the test dir.
	LogFile bool
}

var portRe = regexp.MustCompile(`@@([A-Za-z0-9_]+)@@`)

// FreePort returns a TCP port free on loopback at the time of the call.
func FreePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs caddyfile (without a global options block: Start writes one).
func Start(t testing.TB, caddyfile string, opts ...Options) *Instance {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	storage, err := os.MkdirTemp("", "caddy-idv-storage-")
	if err != nil {
		t.Fatal(err)
	}
	// Removed after Caddy stops; a webhook delivery still in flight at the
	// end of a test may write a moment later, so removal retries.
	t.Cleanup(func() {
		for i := 0; i < 20 && os.RemoveAll(storage) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	in := &Instance{t: t, Storage: storage}
	global := "{\n\tadmin off\n\tstorage file_system " + in.Storage + "\n\tgrace_period 1s\n"
	if o.Debug {
		global += "\tdebug\n"
	}
	if o.LogFile {
		in.LogFile = filepath.Join(t.TempDir(), "caddy.log")
		level := "INFO"
		if o.Debug {
			level = "DEBUG"
		}
		global += fmt.Sprintf("\tlog default {\n\t\toutput file %s\n\t\tlevel %s\n\t}\n", in.LogFile, level)
	}
	global += o.Global + "\n}\n"
	in.global = global
	// A port found free may be taken by a test binary running in parallel
	// before Caddy binds it: then pick new ports and try again.
	for attempt := 1; ; attempt++ {
		in.Ports = map[string]int{}
		body := portRe.ReplaceAllStringFunc(caddyfile, func(m string) string {
			name := portRe.FindStringSubmatch(m)[1]
			if _, ok := in.Ports[name]; !ok {
				in.Ports[name] = FreePort(t)
			}
			return fmt.Sprint(in.Ports[name])
		})
		cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(global+body), nil)
		if err != nil {
			t.Fatalf("adapting the test Caddyfile: %v\n%s", err, global+body)
		}
		for _, w := range warnings {
			if !strings.Contains(w.Message, "not formatted") {
				t.Logf("caddyfile warning: %s", w)
			}
		}
		in.Config = cfg
		err = caddy.Load(cfg, true)
		if err == nil {
			break
		}
		if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
			t.Logf("a port was taken before Caddy bound it; retrying with new ports: %v", err)
			continue
		}
		t.Fatalf("loading the test config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	for _, p := range in.Ports {
		waitPort(t, p)
	}
	return in
}

// Reload loads a new Caddyfile into the running Caddy, keeping the ports
// and the global options of Start.
func (in *Instance) Reload(caddyfile string) error {
	body := portRe.ReplaceAllStringFunc(caddyfile, func(m string) string {
		return fmt.Sprint(in.Ports[portRe.FindStringSubmatch(m)[1]])
	})
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in.global+body), nil)
	if err != nil {
		return err
	}
	return caddy.Load(cfg, true)
}

func waitPort(t testing.TB, port int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("port %d did not open", port)
}

// URL returns http://127.0.0.1:<port of name><path>.
func (in *Instance) URL(name, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", in.Ports[name], path)
}

// Logs returns what was written to the log file so far.
func (in *Instance) Logs() string {
	b, _ := os.ReadFile(in.LogFile)
	return string(b)
}

// Client is an HTTP client with a cookie jar (a browser's session) that
// does not follow redirects.
func Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Do sends a request and returns the status, headers and body.
func Do(t testing.TB, c *http.Client, method, url string, body io.Reader, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// LoadError adapts and loads caddyfile, expecting it to fail, and returns
// the error (nil if it loaded, in which case Caddy is stopped again).
func LoadError(t testing.TB, caddyfile string) error {
	t.Helper()
	body := portRe.ReplaceAllStringFunc(caddyfile, func(string) string { return fmt.Sprint(FreePort(t)) })
	global := "{\n\tadmin off\n\tstorage file_system " + t.TempDir() + "\n}\n"
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(global+body), nil)
	if err != nil {
		return err
	}
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	_ = caddy.Stop()
	return nil
}
