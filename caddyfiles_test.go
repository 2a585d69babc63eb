package caddyidv_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv"
	"github.com/caddy-idv/caddy-idv/caddymodule"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.Main(m)) }

// shipped lists every Caddyfile in the repository.
func shipped(t *testing.T) []string {
	files := []string{"Caddyfile"}
	for _, pattern := range []string{"examples/*/Caddyfile", "examples/*/*.Caddyfile"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("found only %v", files)
	}
	return files
}

// TestShippedCaddyfilesAdaptAndFilterCredentials: every Caddyfile the
// project ships adapts, has no formatting warnings, and every one of its
// servers writes access logs only through a filter that deletes the
// providers' credential headers (Caddy itself redacts only Cookie,
// Set-Cookie, Authorization and Proxy-Authorization).
func TestShippedCaddyfilesAdaptAndFilterCredentials(t *testing.T) {
	t.Setenv("LAN_IP", "192.0.2.10")
	t.Setenv("NODE_PORT", "9091")
	must := []string{"X-Api-Key", "X-Incode-Hardware-Id", "X-Token", "Auth"}
	for _, f := range shipped(t) {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w)
			}
			var cfg struct {
				Logging struct {
					Logs map[string]struct {
						Include []string `json:"include"`
						Encoder struct {
							Format string                     `json:"format"`
							Fields map[string]json.RawMessage `json:"fields"`
						} `json:"encoder"`
					} `json:"logs"`
				} `json:"logging"`
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Logs *json.RawMessage `json:"logs"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			for name, srv := range cfg.Apps.HTTP.Servers {
				if srv.Logs == nil {
					t.Errorf("server %s has no access log (and so no filter)", name)
				}
			}
			access := 0
			for name, l := range cfg.Logging.Logs {
				isAccess := false
				for _, inc := range l.Include {
					isAccess = isAccess || strings.HasPrefix(inc, "http.log.access")
				}
				if !isAccess {
					continue
				}
				access++
				if l.Encoder.Format != "filter" {
					t.Errorf("access log %s is not filtered", name)
				}
				for _, h := range must {
					if _, ok := l.Encoder.Fields["request>headers>"+h]; !ok {
						t.Errorf("access log %s does not delete %s", name, h)
					}
				}
			}
			if access == 0 {
				t.Error("no access log is configured")
			}
		})
	}
}

var envRef = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)`)

// TestEnvExampleListsEveryVariable: every variable the root Caddyfile reads
// is in .env.example, and .env.example lists nothing it does not read.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	cf, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(stripComments(string(cf)), -1) {
		read[m[1]] = true
	}
	if len(read) < 10 {
		t.Fatalf("the root Caddyfile reads only %d variables: %v", len(read), read)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(string(ex), -1) {
		listed[m[1]] = true
	}
	for v := range read {
		if !listed[v] {
			t.Errorf(".env.example does not list %s", v)
		}
	}
	for v := range listed {
		if !read[v] {
			t.Errorf(".env.example lists %s, which the root Caddyfile does not read", v)
		}
	}
	// Incode's samples' names work as they are.
	for _, v := range []string{"API_URL", "API_KEY", "FLOW_ID", "CLIENT_ID", "ADMIN_TOKEN", "API_VERSION"} {
		if !read[v] {
			t.Errorf("the root Caddyfile does not read Incode's %s", v)
		}
	}
}

// rootCaddyfile is the repository's Caddyfile made runnable by testcaddy:
// without its global options, with free ports for 8080 and 8081.
func rootCaddyfile(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	start := strings.Index(body, "\n{\n")
	end := strings.Index(body, "\n}\n")
	if start < 0 || end < start {
		t.Fatal("the root Caddyfile has no global options block: update this test")
	}
	body = body[:start] + body[end+2:]
	for port, name := range map[string]string{"8080": "@@site@@", "8081": "@@sandbox@@"} {
		if !strings.Contains(body, port) {
			t.Fatalf("the root Caddyfile no longer mentions port %s: update this test", port)
		}
		body = strings.ReplaceAll(body, port, name)
	}
	return body
}

// loadEnvFile sets the variables of an env file as `caddy run --envfile`
// does (KEY=VALUE lines, # comments; a variable already set is kept, so the
// test clears them first).
func loadEnvFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", path, line)
		}
		t.Setenv(strings.TrimPrefix(k, "export "), v)
	}
}

// TestRootCaddyfileWithEnvFileTalksToTheRealAPI: the README's "switch to a
// real provider" step. .env.example, filled in for Incode, points the root
// Caddyfile at a provider (here a fake one) with no edit to the Caddyfile;
// the sidecar sends it the key from the env file, and that key is nowhere in
// the adapted JSON config.
func TestRootCaddyfileWithEnvFileTalksToTheRealAPI(t *testing.T) {
	const key, flow, client = "real-key-from-envfile", "real-flow", "real-client"
	var mu sync.Mutex
	var seen []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s key=%s body=%s", r.Method, r.URL.Path, r.Header.Get("X-Api-Key"), body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/omni/start" {
			fmt.Fprint(w, `{"token":"token-from-the-fake-provider","interviewId":"fake-interview-1"}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"not in the fake"}`)
	}))
	defer fake.Close()

	ex, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	fill := map[string]string{"API_URL": fake.URL, "API_KEY": key, "FLOW_ID": flow, "CLIENT_ID": client,
		"ADMIN_EMAIL": "", "ADMIN_PASSWORD": "", "WEBHOOK_SECRET": "real-webhook-secret"}
	var env strings.Builder
	for _, line := range strings.Split(string(ex), "\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "# "), "=")
		if v, ok := fill[name]; ok && strings.Contains(line, "=") {
			line = name + "=" + v
			delete(fill, name)
		}
		env.WriteString(line + "\n")
	}
	if len(fill) > 0 {
		t.Fatalf(".env.example has no line for %v", fill)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(env.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, _ := os.ReadFile("Caddyfile")
	for _, m := range envRef.FindAllStringSubmatch(stripComments(string(cf)), -1) {
		if _, set := os.LookupEnv(m[1]); set {
			t.Setenv(m[1], "")
			os.Unsetenv(m[1]) // restored by t.Setenv's cleanup
		}
	}
	loadEnvFile(t, envFile)

	in := testcaddy.Start(t, rootCaddyfile(t), testcaddy.Options{LogFile: true})
	if strings.Contains(string(in.Config), key) {
		t.Fatal("the API key from the env file is in the adapted JSON config")
	}
	site := fmt.Sprintf("http://localhost:%d", in.Ports["site"])
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", site+"/api/start", nil)
	if status != http.StatusOK || !strings.Contains(body, "token-from-the-fake-provider") {
		t.Fatalf("GET /api/start: %d %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "POST /omni/start key=" + key
	found := false
	for _, s := range seen {
		found = found || (strings.HasPrefix(s, want) && strings.Contains(s, flow))
	}
	if !found {
		t.Errorf("the fake provider did not get %q with flow %s; it got %q", want, flow, seen)
	}
	// Regula, not configured in the env file, stays on the sandbox.
	status, _, body = testcaddy.Do(t, testcaddy.Client(), "GET", site+"/regula/api/start", nil)
	if status != http.StatusOK || !strings.Contains(body, fmt.Sprintf(":%d/", in.Ports["sandbox"])) {
		t.Errorf("GET /regula/api/start (sandbox): %d %s", status, body)
	}
	if logs, err := os.ReadFile(in.LogFile); err == nil && strings.Contains(string(logs), key) {
		t.Error("the API key is in Caddy's log")
	}
}

// fence matches a fenced block of a language in Markdown.
var fence = regexp.MustCompile("(?ms)^```(caddyfile|json)[ \t]*\n(.*?)^```")

// docs lists README.md and every Markdown file under docs/.
func docs(t *testing.T) []string {
	files := []string{"README.md"}
	err := filepath.WalkDir("docs", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// TestDocsExamplesAdaptAndLoad: every ```caddyfile block in README.md and
// docs/ adapts (a block that starts with a directive rather than a site or
// global options is put inside a site first), and every ```json block that
// is a whole config ("apps") is validated by Caddy: its modules load and
// provision, nothing starts listening.
func TestDocsExamplesAdaptAndLoad(t *testing.T) {
	caddyfiles, configs := 0, 0
	for _, f := range docs(t) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range fence.FindAllStringSubmatch(string(src), -1) {
			name := fmt.Sprintf("%s#%d-%s", f, i+1, m[1])
			block := m[2]
			t.Run(name, func(t *testing.T) {
				switch m[1] {
				case "caddyfile":
					caddyfiles++
					if first := firstToken(block); first != "{" && !strings.Contains(first, ":") && !strings.Contains(first, ".") && !strings.HasPrefix(first, "(") && first != "import" {
						block = "http://:8080 {\n" + block + "\n}\n"
					}
					if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(block), map[string]any{"filename": f}); err != nil {
						t.Fatalf("adapt: %v\n%s", err, block)
					}
				case "json":
					if !strings.Contains(block, `"apps"`) {
						var v any
						if err := json.Unmarshal([]byte(block), &v); err != nil {
							t.Fatalf("not JSON: %v\n%s", err, block)
						}
						return
					}
					configs++
					var cfg caddy.Config
					if err := json.Unmarshal([]byte(block), &cfg); err != nil {
						t.Fatalf("not a Caddy config: %v\n%s", err, block)
					}
					if err := caddy.Validate(&cfg); err != nil {
						t.Fatalf("caddy validate: %v\n%s", err, block)
					}
				}
			})
		}
	}
	if caddyfiles == 0 || configs == 0 {
		t.Errorf("found %d Caddyfile and %d JSON config examples in the docs", caddyfiles, configs)
	}
}

// firstToken is the first word of a Caddyfile that is not a comment.
func firstToken(src string) string {
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		return strings.Fields(l)[0]
	}
	return ""
}

// stripComments drops the comment lines of a Caddyfile.
func stripComments(src string) string {
	var b strings.Builder
	for _, l := range strings.Split(src, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestConfigErrorsNameTheOptionAndTheVariable: a misspelled option, in the
// idv block or in any provider's, names itself and the closest valid one;
// missing required values are all reported at once, each with the variable
// it was read from; a bad api_url says why without a stray status code.
func TestConfigErrorsNameTheOptionAndTheVariable(t *testing.T) {
	adapt := func(body string) error {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8080 {\n"+body+"\n}\n"), nil)
		return err
	}
	for _, tc := range []struct{ body, want string }{
		{"idv {\n incode {\n api_key k\n }\n sesion_ttl 24h\n}", `idv: unknown option "sesion_ttl": did you mean "session_ttl"?`},
		{"idv {\n incode {\n api_kye k\n }\n}", `incode: unknown option "api_kye": did you mean "api_key"?`},
		{"idv {\n regula {\n workflow x\n }\n}", `regula: unknown option "workflow": did you mean "workflow_id"?`},
		{"idv {\n focalx {\n client_secert x\n }\n}", `focalx: unknown option "client_secert": did you mean "client_secret"?`},
		{"idv {\n regulla {\n }\n}", `idv: unknown option "regulla": did you mean "regula"?`},
		{"idv_sandbox {\n incod {\n }\n}", `idv_sandbox: unknown option "incod": did you mean "incode"?`},
	} {
		if err := adapt(tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, tc.want)
		}
	}

	// Provisioning: every missing value at once, with its variable.
	os.Unsetenv("IDV_TEST_UNSET_KEY")
	os.Unsetenv("IDV_TEST_UNSET_FLOW")
	t.Setenv("IDV_TEST_EMPTY", "")
	err := testcaddy.LoadError(t, ":@@site@@ {\n idv {\n incode {\n api_url http://127.0.0.1:9\n api_key {env.IDV_TEST_UNSET_KEY}\n flow_id {env.IDV_TEST_EMPTY:sandbox}\n }\n webhook_auth none\n }\n}\n")
	for _, want := range []string{
		"api_key is required: {env.IDV_TEST_UNSET_KEY} is not set",
		"flow_id is required: {env.IDV_TEST_EMPTY:sandbox} is set but empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("provision error %v, want it to contain %q", err, want)
		}
	}
	err = testcaddy.LoadError(t, ":@@site@@ {\n idv {\n incode {\n api_url http://127.0.0.1:9\n api_key k\n flow_id {env.IDV_TEST_UNSET_FLOW:}\n }\n webhook_auth none\n }\n}\n")
	if want := "flow_id is required: {env.IDV_TEST_UNSET_FLOW:}: IDV_TEST_UNSET_FLOW is not set and the default is empty"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("provision error %v, want it to contain %q", err, want)
	}

	// api_url without a scheme: the reason, and no stray status code.
	err = testcaddy.LoadError(t, ":@@site@@ {\n idv {\n incode {\n api_url 127.0.0.1:8081\n api_key k\n flow_id f\n client_id c\n }\n webhook_auth none\n }\n}\n")
	if err == nil || !strings.Contains(err.Error(), "api_url must be an http or https URL") || strings.Contains(err.Error(), ": 0 ") {
		t.Errorf("api_url 127.0.0.1:8081: %v", err)
	}
}

// TestRootCaddyfileSandboxAndRefusedWebhooks: the default configuration's
// sandbox answers a JSON 404 on a path it does not emulate (a wrong api_url
// path reads as "not found", not as malformed JSON), and a webhook with a
// wrong secret is refused and logged at WARN with the reason.
func TestRootCaddyfileSandboxAndRefusedWebhooks(t *testing.T) {
	in := testcaddy.Start(t, rootCaddyfile(t), testcaddy.Options{LogFile: true})
	status, hd, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("sandbox", "/v1/omni/start"), nil)
	var nf struct{ Error string }
	if status != http.StatusNotFound || !strings.HasPrefix(hd.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(body), &nf) != nil || !strings.Contains(nf.Error, "/v1/omni/start") {
		t.Errorf("sandbox, unknown path: %d %s %s", status, hd.Get("Content-Type"), body)
	}
	site := fmt.Sprintf("http://localhost:%d", in.Ports["site"])
	status, _, body = testcaddy.Do(t, testcaddy.Client(), "POST", site+"/api/webhook", strings.NewReader(`{"interviewId":"x"}`),
		"X-Webhook-Secret", "not-the-secret", "Content-Type", "application/json")
	if status != http.StatusUnauthorized {
		t.Fatalf("webhook with a wrong secret: %d %s", status, body)
	}
	var refused map[string]any
	for _, l := range strings.Split(in.Logs(), "\n") {
		if strings.Contains(l, "webhook refused") {
			_ = json.Unmarshal([]byte(l), &refused)
		}
	}
	if refused["level"] != "warn" || refused["reason"] != "credentials wrong" {
		t.Errorf("refused webhook logged as %v", refused)
	}
	if strings.Contains(in.Logs(), "not-the-secret") {
		t.Error("the presented secret is in the log")
	}
}

// TestRootCaddyfileStartsQuietlyAndSaysWhatItServes: the default
// configuration, global options included, starts without a warning, and
// the start-up summary gives the URL to open and says that each of the
// providers is the sandbox.
func TestRootCaddyfileStartsQuietlyAndSaysWhatItServes(t *testing.T) {
	src, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	site, sb, admin := testcaddy.FreePort(t), testcaddy.FreePort(t), testcaddy.FreePort(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	body := strings.NewReplacer("8080", fmt.Sprint(site), "8081", fmt.Sprint(sb),
		"admin localhost:2019", fmt.Sprintf("admin localhost:%d\n\tstorage file_system %s", admin, t.TempDir()),
		"log default {", "log default {\n\t\toutput file "+logFile).Replace(string(src))
	if !strings.Contains(body, logFile) || !strings.Contains(body, fmt.Sprintf("admin localhost:%d", admin)) {
		t.Fatal("the root Caddyfile's global options changed: update this test")
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	sums := caddymodule.Summaries(caddy.ActiveContext())
	msg := caddymodule.StartupMessage(sums)
	_ = caddy.Stop()
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
			t.Errorf("logged at start: %s", l)
		}
	}
	if !strings.Contains(msg, fmt.Sprintf("open http://localhost:%d/", site)) {
		t.Errorf("the start-up message gives no URL to open:\n%s", msg)
	}
	got := map[string]string{}
	for _, s := range sums {
		if s.Sandbox {
			got[s.Prefix] = s.Provider
		}
	}
	want := map[string]string{"/api": "incode", "/regula/api": "regula", "/focalx/api": "focalx", "/veriff/api": "veriff", "/sumsub/api": "sumsub", "/onfido/api": "onfido"}
	if fmt.Sprint(got) != fmt.Sprint(want) || !strings.Contains(msg, "(the offline sandbox)") {
		t.Errorf("sandboxed providers: %v, want %v\n%s", got, want, msg)
	}
}
