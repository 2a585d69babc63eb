package testcaddy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// JSON decodes body into a map, failing the test when it is not JSON.
func JSON(t testing.TB, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, body)
	}
	return m
}

// Calls reads the sandbox's call counters at base (http://host:port).
func Calls(t testing.TB, base string) map[string]int {
	t.Helper()
	_, _, body := Do(t, http.DefaultClient, "GET", base+"/__sandbox/calls", nil)
	var out struct {
		Calls map[string]int `json:"calls"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("sandbox calls: %v: %s", err, body)
	}
	return out.Calls
}

// CountCalls sums the counters whose key contains every part.
func CountCalls(calls map[string]int, parts ...string) int {
	n := 0
	for k, v := range calls {
		ok := true
		for _, p := range parts {
			if !strings.Contains(k, p) {
				ok = false
				break
			}
		}
		if ok {
			n += v
		}
	}
	return n
}

// SandboxRequest is one entry of the sandbox's request log.
type SandboxRequest struct {
	Provider  string `json:"provider"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Host      string `json:"host"`
	APIKey    bool   `json:"api_key"`
	Executive bool   `json:"executive"`
}

// Requests reads the sandbox's request log.
func Requests(t testing.TB, base string) []SandboxRequest {
	t.Helper()
	_, _, body := Do(t, http.DefaultClient, "GET", base+"/__sandbox/requests", nil)
	var out struct {
		Requests []SandboxRequest `json:"requests"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("sandbox requests: %v: %s", err, body)
	}
	return out.Requests
}

// Reset zeroes the sandbox's counters and clears its faults.
func Reset(t testing.TB, base string) {
	t.Helper()
	if s, _, b := Do(t, http.DefaultClient, "POST", base+"/__sandbox/reset", nil); s != http.StatusOK {
		t.Fatalf("sandbox reset: %d %s", s, b)
	}
}

// Fault adds a fault rule to the sandbox (see sandbox.Fault).
func Fault(t testing.TB, base string, rule map[string]any) {
	t.Helper()
	b, _ := json.Marshal(rule)
	if s, _, body := Do(t, http.DefaultClient, "POST", base+"/__sandbox/faults", strings.NewReader(string(b))); s != http.StatusOK {
		t.Fatalf("sandbox fault: %d %s", s, body)
	}
}

// Snapshot hashes every stored session file under the storage root, so a
// test can prove that requests changed none.
func Snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(root, "idv"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, string(filepath.Separator)+"sessions"+string(filepath.Separator)) {
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			out[p] = hex.EncodeToString(sum[:])
		}
		return nil
	})
	// Sessions in the file storage's session database are copied to files
	// (under root/.snapshot, stable paths) so that callers can read them.
	db, err := session.DumpFileStorage(root)
	if err != nil {
		t.Fatalf("reading the session database: %v", err)
	}
	for k, v := range db {
		p := filepath.Join(root, ".snapshot", filepath.FromSlash(k)+".json")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
			_ = os.WriteFile(p, v, 0o600)
		}
		sum := sha256.Sum256(v)
		out[p] = hex.EncodeToString(sum[:])
	}
	return out
}

// SameSnapshot fails the test unless two snapshots are equal.
func SameSnapshot(t testing.TB, before, after map[string]string) {
	t.Helper()
	if len(after) != len(before) {
		t.Fatalf("stored sessions: %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("stored session %s changed", k)
		}
	}
}

// DoJSON sends a request (body may be empty) and decodes a JSON answer; an
// empty answer decodes to nil.
func DoJSON(t testing.TB, c *http.Client, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	st, _, out := Do(t, c, method, url, rd, header...)
	if out == "" {
		return st, nil
	}
	return st, JSON(t, out)
}

// AwaitJSON polls GET url until cond holds on its JSON answer. The deadline
// only bounds a broken test; nothing asserts how long it took.
func AwaitJSON(t testing.TB, c *http.Client, url, what string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	var v map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		if _, v = DoJSON(t, c, "GET", url, ""); cond(v) {
			return v
		}
	}
	t.Fatalf("never %s: %v", what, v)
	return nil
}

// HMACHex is the lower-case hex HMAC of body with key, as providers sign
// webhooks and requests.
func HMACHex(h func() hash.Hash, key, body string) string {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// Stack is a running site with the idv handler (server "site") and its
// sandbox (server "sandbox"): the providers' journeys.
type Stack struct {
	T  testing.TB
	In *Instance
}

// Do calls path on the site and decodes its JSON answer.
func (s *Stack) Do(c *http.Client, method, path, body string, hdr ...string) (int, map[string]any) {
	s.T.Helper()
	return DoJSON(s.T, c, method, s.In.URL("site", path), body, hdr...)
}

// Await polls the site's GET /api/session until cond holds (no timing
// assertion: the deadline only bounds a broken test).
func (s *Stack) Await(c *http.Client, what string, cond func(map[string]any) bool) map[string]any {
	s.T.Helper()
	return AwaitJSON(s.T, c, s.In.URL("site", "/api/session"), what, cond)
}

// ChooseOutcome completes an emulator's hosted outcome page at pageURL as a
// user would: the page must offer outcome; the POST's answer is returned
// (redirects are not followed).
func (s *Stack) ChooseOutcome(pageURL, outcome string) (int, http.Header, string) {
	s.T.Helper()
	c := Client()
	st, _, page := Do(s.T, c, "GET", pageURL, nil)
	if st != 200 || !strings.Contains(page, `value="`+outcome+`"`) {
		s.T.Fatalf("outcome page %s: %d %s", pageURL, st, page)
	}
	return Do(s.T, c, "POST", pageURL, strings.NewReader(url.Values{"outcome": {outcome}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
}

// Events counts the events of c's session.
func (s *Stack) Events(c *http.Client) int {
	s.T.Helper()
	_, v := s.Do(c, "GET", "/api/session", "")
	evs, _ := v["events"].([]any)
	return len(evs)
}

// CheckReplayAndOlder proves the webhook pipeline's last rules on c's
// session, whose decision final was just delivered: a replay of final
// (deliver signs and posts a body, returning the status) is acknowledged and
// records nothing, and an older decision is acknowledged and changes
// nothing: the session keeps result and status.
func (s *Stack) CheckReplayAndOlder(c *http.Client, deliver func(body string) int, final, older, result, status string) {
	s.T.Helper()
	n := s.Events(c)
	if st := deliver(final); st != 200 || s.Events(c) != n {
		s.T.Fatalf("replay: %d, %d events (had %d)", st, s.Events(c), n)
	}
	if st := deliver(older); st != 200 {
		s.T.Fatalf("older: %d", st)
	}
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != result || v["status"] != status {
		s.T.Fatalf("an older decision replaced a newer one: %v", v)
	}
}

// StartStack starts a provider's journey: a site whose idv block holds the
// provider's block (api_url on the sandbox, then the lines site) without a
// session quota, and a sandbox emulating the provider (the lines sandbox)
// that, when webhooks, delivers to the site's /api/webhook with quick
// retries. Caddy's logs go to a file.
func StartStack(t *testing.T, name string, site, sandbox []string, webhooks bool) Stack {
	t.Helper()
	if webhooks {
		sandbox = append(sandbox, "webhook_url http://127.0.0.1:@@site@@/api/webhook", "webhook_retry 20ms 2 6")
	}
	in := Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		`+name+` {
			api_url http://127.0.0.1:@@sandbox@@
			`+strings.Join(site, "\n\t\t\t")+`
		}
		session_quota off
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		`+name+` {
			`+strings.Join(sandbox, "\n\t\t\t")+`
		}
	}
}`, Options{LogFile: true})
	return Stack{T: t, In: in}
}

// CheckFailClosed proves that a site without the provider's webhook secret
// refuses a signed delivery of body (hdr carries the signature) with 403.
func (s *Stack) CheckFailClosed(body string, hdr ...string) {
	s.T.Helper()
	st, m := s.Do(Client(), "POST", "/api/webhook", body, hdr...)
	if st != 403 || !strings.Contains(fmt.Sprint(m["error"]), "no webhook secret") {
		s.T.Fatalf("no secret: %d %v", st, m)
	}
}

// CheckMalformed runs the bad requests cases, and KitCases, against the
// site (at least min in all) and proves that none reached the emulator of
// the provider called name.
func (s *Stack) CheckMalformed(t *testing.T, name string, min int, tokenRoute bool, cases []ErrorCase) {
	t.Helper()
	CheckErrors(t, s.In.URL("site", ""), min, append(cases, KitCases(tokenRoute)...))
	if calls := Calls(t, s.In.URL("sandbox", "")); CountCalls(calls, name) != 0 {
		t.Fatalf("malformed requests reached %s: %v", name, calls)
	}
}

// CheckRefresher proves the refresher of a stack without webhooks: a
// session started on the site is pending until decide completes its hosted
// page (the start answer's url), then reads result and status, by the call
// counted under call (the sandbox's "provider op credential"). It returns
// the start answer.
func (s *Stack) CheckRefresher(c *http.Client, decide func(url string), result, status, call string) map[string]any {
	s.T.Helper()
	_, a := s.Do(c, "GET", "/api/start", "")
	if _, v := s.Do(c, "GET", "/api/session", ""); v["result"] != "pending" {
		s.T.Fatalf("before: %v", v)
	}
	url, _ := a["url"].(string)
	decide(url)
	s.Await(c, result, func(v map[string]any) bool { return v["result"] == result && v["status"] == status })
	if calls := Calls(s.T, s.In.URL("sandbox", "")); calls[call] == 0 {
		s.T.Fatalf("calls %v, want %q", calls, call)
	}
	return a
}
