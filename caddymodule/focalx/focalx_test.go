package focalx_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/focalx"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// The sandbox account. The values are distinctive so the log check can look
// for them.
const (
	clientKey    = "fx-client-key-7d1e"
	clientSecret = "fx-client-secret-93b0c2"
	pubKey       = "fx-pub-key-5a6f"
	hexKey       = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	b64Key       = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="
)

// block writes a Caddyfile block of "option value" lines: the account's
// defaults with over applied ("" removes an option).
func block(indent string, over map[string]string) string {
	o := map[string]string{"client_key": clientKey, "client_secret": clientSecret, "encryption_key": hexKey, "pub_key": pubKey}
	for k, v := range over {
		o[k] = v
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if o[k] != "" {
			fmt.Fprintf(&b, "%s%s %s\n", indent, k, o[k])
		}
	}
	return b.String()
}

// site is an idv site on port calling the sandbox on port sbx.
func site(port, sbx string, over map[string]string, idvExtra string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@%s@@ {
	idv {
		focalx {
			api_url http://127.0.0.1:@@%s@@
%s		}
%s
	}
	respond "frontend"
}
`, port, sbx, block("\t\t\t", over), idvExtra)
}

func sandboxSite(port, name string, over map[string]string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@%s@@ {
	idv_sandbox {
		name %s
		focalx {
%s		}
	}
}
`, port, name, block("\t\t\t", over))
}

func config() string {
	return site("site", "sbx", nil, "") +
		site("authuser", "sbx", map[string]string{"user_email": "{http.request.header.X-Auth-User}"}, "") +
		// Its own namespace, so its own token cache: the cache's fetch
		// timeout follows the handler's.
		site("slow", "sbx", nil, "\t\ttimeout 1s\n\t\tstorage_namespace focalx-slow") +
		site("badkey", "sbx", map[string]string{"client_key": "fx-wrong-key"}, "") +
		site("badsecret", "sbx", map[string]string{"client_secret": "fx-wrong-secret"}, "") +
		site("badpub", "sbx", map[string]string{"pub_key": "fx-wrong-pub"}, "") +
		site("gcm", "sbxgcm", map[string]string{"cipher": "gcm", "encryption_key": b64Key}, "") +
		site("mismatch", "sbx", map[string]string{"cipher": "gcm"}, "") +
		site("fallback", "sbxinv", nil, "") +
		site("expired", "sbxexp", nil, "") +
		sandboxSite("sbx", "default", nil) +
		sandboxSite("sbxgcm", "gcm", map[string]string{"cipher": "gcm", "encryption_key": b64Key, "token_ttl": "5d"}) +
		sandboxSite("sbxinv", "inv", map[string]string{"token_ttl": "5d", "expiry_format": "invalid"}) +
		sandboxSite("sbxexp", "exp", map[string]string{"token_ttl": "1ns"})
}

type tokenAnswer struct {
	Token      string `json:"token"`
	ExpiryTime string `json:"expiry_time"`
	ExpiresAt  string `json:"expiresAt"`
	Success    *bool  `json:"success"`
	Error      string `json:"error"`
}

// get asks a site for a token with the given header pairs.
func get(t *testing.T, in *testcaddy.Instance, port string, header ...string) (int, tokenAnswer) {
	t.Helper()
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL(port, "/api/token"), nil, header...)
	var a tokenAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET %s /api/token: %d, not JSON: %s", port, status, body)
	}
	return status, a
}

// mustToken asks for email's token and fails unless it is given.
func mustToken(t *testing.T, in *testcaddy.Instance, port, email string) tokenAnswer {
	t.Helper()
	status, a := get(t, in, port, "X-User-Email", email)
	if status != http.StatusOK || a.Token == "" {
		t.Fatalf("token for %s on %s: %d %+v", email, port, status, a)
	}
	return a
}

func calls(t *testing.T, in *testcaddy.Instance, sbx string) map[string]int {
	t.Helper()
	return testcaddy.Calls(t, in.URL(sbx, ""))
}

func getTokenCalls(t *testing.T, in *testcaddy.Instance, sbx, cred string) int {
	t.Helper()
	return calls(t, in, sbx)["focalx GetToken "+cred]
}

func reset(t *testing.T, in *testcaddy.Instance, sbx string) {
	t.Helper()
	testcaddy.Reset(t, in.URL(sbx, ""))
}

// fault makes the sandbox's next GetToken calls misbehave.
func fault(t *testing.T, in *testcaddy.Instance, sbx string, rule map[string]any) {
	t.Helper()
	rule["provider"], rule["op"] = "focalx", "GetToken"
	testcaddy.Fault(t, in.URL(sbx, ""), rule)
}

// whoami asks the sandbox whose token tok is.
func whoami(t *testing.T, in *testcaddy.Instance, sbx, tok string) (int, string) {
	t.Helper()
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL(sbx, "/__focalx/whoami"), nil, "Authorization", "Bearer "+tok)
	var out struct {
		UserHash string `json:"user_hash"`
	}
	_ = json.Unmarshal([]byte(body), &out)
	return status, out.UserHash
}

// lifetime reads an answer's expiry_time and checks expiresAt agrees with it.
func lifetime(t *testing.T, a tokenAnswer) time.Duration {
	t.Helper()
	d, ok := focalx.ParseTimedelta(a.ExpiryTime)
	if !ok {
		t.Fatalf("expiry_time %q is not a timedelta", a.ExpiryTime)
	}
	at, err := time.Parse(time.RFC3339, a.ExpiresAt)
	if err != nil || at.Location() != time.UTC {
		t.Fatalf("expiresAt %q is not RFC 3339 UTC: %v", a.ExpiresAt, err)
	}
	if diff := time.Until(at) - d; diff < -time.Minute || diff > time.Minute {
		t.Fatalf("expiresAt %s and expiry_time %s disagree", a.ExpiresAt, a.ExpiryTime)
	}
	return d
}

func TestFocalx(t *testing.T) {
	in := testcaddy.Start(t, config(), testcaddy.Options{LogFile: true})
	c := testcaddy.Client()

	t.Run("other paths reach the site", func(t *testing.T) {
		if status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", "/other"), nil); status != http.StatusOK || body != "frontend" {
			t.Fatalf("frontend: %d %s", status, body)
		}
	})

	const ann = "ann@example.test"
	var annToken tokenAnswer
	t.Run("token for the user in X-User-Email", func(t *testing.T) {
		reset(t, in, "sbx")
		annToken = mustToken(t, in, "site", ann)
		if status, hash := whoami(t, in, "sbx", annToken.Token); status != http.StatusOK || hash != focalx.UserHash(ann) {
			t.Fatalf("whoami: %d %q, want %s", status, hash, focalx.UserHash(ann))
		}
		if d := lifetime(t, annToken); d <= 2*time.Hour-time.Minute || d > 2*time.Hour {
			t.Fatalf("expiry_time %s, want about 2:00:00 (the sandbox's default)", annToken.ExpiryTime)
		}
		if n := getTokenCalls(t, in, "sbx", "ok"); n != 1 {
			t.Fatalf("GetToken calls: %v", calls(t, in, "sbx"))
		}
	})

	t.Run("second call is served from the cache", func(t *testing.T) {
		for _, email := range []string{ann, "  ANN@Example.TEST "} { // normalised: one user
			a := mustToken(t, in, "site", email)
			if a.Token != annToken.Token || a.ExpiresAt != annToken.ExpiresAt {
				t.Fatalf("%q: got %+v, want the cached %+v", email, a, annToken)
			}
			lifetime(t, a)
		}
		if n := getTokenCalls(t, in, "sbx", "ok"); n != 1 {
			t.Fatalf("GetToken calls: %v", calls(t, in, "sbx"))
		}
	})

	t.Run("missing or empty e-mail is 400", func(t *testing.T) {
		reset(t, in, "sbx")
		for _, h := range [][]string{nil, {"X-User-Email", ""}, {"X-User-Email", "   "}, {"X-Auth-User", ann}} {
			status, a := get(t, in, "site", h...)
			if status != http.StatusBadRequest || a.Success == nil || *a.Success || !strings.Contains(a.Error, "e-mail") {
				t.Fatalf("headers %q: %d %+v", h, status, a)
			}
		}
		if n := len(calls(t, in, "sbx")); n != 0 {
			t.Fatalf("the sandbox was called: %v", calls(t, in, "sbx"))
		}
	})

	t.Run("concurrent first requests make one GetToken call", func(t *testing.T) {
		reset(t, in, "sbx")
		// Hold the one upstream call long enough for every request to wait on it.
		fault(t, in, "sbx", map[string]any{"latency": "500ms", "times": 1})
		const n = 50
		tokens := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", in.URL("site", "/api/token"), nil)
				req.Header.Set("X-User-Email", "crowd@example.test")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				var a tokenAnswer
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &a) != nil {
					t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
				}
				tokens[i] = a.Token
			})
		}
		wg.Wait()
		for i := range tokens {
			if tokens[i] == "" || tokens[i] != tokens[0] {
				t.Fatalf("request %d got token %q, request 0 %q", i, tokens[i], tokens[0])
			}
		}
		if got := calls(t, in, "sbx"); got["focalx GetToken ok"] != 1 || len(got) != 1 {
			t.Fatalf("GetToken calls: %v, want exactly one", got)
		}
	})

	t.Run("users never get each other's token", func(t *testing.T) {
		reset(t, in, "sbx")
		users := []string{"bob@example.test", "carol@example.test"}
		got := map[string]string{}
		for range 2 { // the second round comes from the cache
			for _, u := range users {
				a := mustToken(t, in, "site", u)
				if prev, ok := got[u]; ok && prev != a.Token {
					t.Fatalf("%s: the cached token changed", u)
				}
				got[u] = a.Token
			}
		}
		if got[users[0]] == got[users[1]] {
			t.Fatal("two users got the same token")
		}
		for _, u := range users {
			if status, hash := whoami(t, in, "sbx", got[u]); status != http.StatusOK || hash != focalx.UserHash(u) {
				t.Fatalf("%s's token: whoami %d %q, want %s", u, status, hash, focalx.UserHash(u))
			}
		}
		if n := getTokenCalls(t, in, "sbx", "ok"); n != 2 {
			t.Fatalf("GetToken calls: %v, want one per user", calls(t, in, "sbx"))
		}
	})

	t.Run("another account never gets this one's cached token", func(t *testing.T) {
		// site and gcm share the default namespace, so the token cache, but
		// are different accounts (api_url); ann's token is cached for site.
		reset(t, in, "sbxgcm")
		a := mustToken(t, in, "gcm", ann)
		if a.Token == annToken.Token || getTokenCalls(t, in, "sbxgcm", "ok") != 1 {
			t.Fatalf("gcm site answered %+v with calls %v", a, calls(t, in, "sbxgcm"))
		}
	})

	t.Run("rejected credentials are a 502 naming them", func(t *testing.T) {
		reset(t, in, "sbx")
		for _, tc := range []struct{ port, cred, msg string }{
			{"badkey", "bad_client_key", "client key"},
			{"badsecret", "bad_client_secret", "client secret"},
			{"badpub", "bad_pub_key", "public key"},
			{"mismatch", "undecryptable", "client key"}, // a gcm envelope the cbc sandbox cannot open
		} {
			for range 2 { // failures are not cached: each request asks again
				status, a := get(t, in, tc.port, "X-User-Email", ann)
				if status != http.StatusBadGateway || !strings.Contains(a.Error, tc.msg) || a.Token != "" {
					t.Fatalf("%s: %d %+v, want 502 naming the %s", tc.port, status, a, tc.msg)
				}
			}
			if n := getTokenCalls(t, in, "sbx", tc.cred); n != 2 {
				t.Fatalf("%s: calls %v, want 2 × %s", tc.port, calls(t, in, "sbx"), tc.cred)
			}
		}
	})

	t.Run("upstream 500 is a 502, and not cached", func(t *testing.T) {
		reset(t, in, "sbx")
		fault(t, in, "sbx", map[string]any{"status": 500})
		status, a := get(t, in, "site", "X-User-Email", "dave@example.test")
		if status != http.StatusBadGateway || !strings.Contains(a.Error, "500") {
			t.Fatalf("%d %+v, want 502 upstream answered 500", status, a)
		}
		reset(t, in, "sbx")
		mustToken(t, in, "site", "dave@example.test")
	})

	t.Run("upstream slower than the timeout is a 504", func(t *testing.T) {
		reset(t, in, "sbx")
		fault(t, in, "sbx", map[string]any{"latency": "5s", "times": 1})
		status, a := get(t, in, "slow", "X-User-Email", "erin@example.test")
		if status != http.StatusGatewayTimeout {
			t.Fatalf("%d %+v, want 504", status, a)
		}
		mustToken(t, in, "slow", "erin@example.test") // the fault was used once
	})

	t.Run("gcm envelope", func(t *testing.T) {
		reset(t, in, "sbxgcm")
		a := mustToken(t, in, "gcm", "frank@example.test")
		if status, hash := whoami(t, in, "sbxgcm", a.Token); status != http.StatusOK || hash != focalx.UserHash("frank@example.test") {
			t.Fatalf("whoami: %d %q", status, hash)
		}
		if d := lifetime(t, a); d <= 5*24*time.Hour-time.Minute || d > 5*24*time.Hour {
			t.Fatalf("expiry_time %s, want about 5 days, 0:00:00", a.ExpiryTime)
		}
		if got := calls(t, in, "sbxgcm"); got["focalx GetToken ok"] != 1 || len(got) != 2 { // GetToken and whoami
			t.Fatalf("calls: %v", got)
		}
	})

	t.Run("unreadable expiry_time falls back to 2 hours", func(t *testing.T) {
		a := mustToken(t, in, "fallback", ann)
		if d := lifetime(t, a); d <= 2*time.Hour-time.Minute || d > 2*time.Hour {
			t.Fatalf("expiry_time %s, want about 2:00:00 (the sandbox said 5 days, unreadably)", a.ExpiryTime)
		}
	})

	t.Run("an expired token is not cached", func(t *testing.T) {
		reset(t, in, "sbxexp")
		for range 2 {
			a := mustToken(t, in, "expired", ann)
			if a.ExpiryTime != "0:00:00" {
				t.Fatalf("expiry_time %q, want 0:00:00", a.ExpiryTime)
			}
		}
		if n := getTokenCalls(t, in, "sbxexp", "ok"); n != 2 {
			t.Fatalf("calls %v, want two GetToken", calls(t, in, "sbxexp"))
		}
	})

	t.Run("user_email from another header", func(t *testing.T) {
		a := mustTokenHeader(t, in, "authuser", "X-Auth-User", "gina@example.test")
		if _, hash := whoami(t, in, "sbx", a.Token); hash != focalx.UserHash("gina@example.test") {
			t.Fatalf("whoami %q", hash)
		}
		if status, a := get(t, in, "authuser", "X-User-Email", "gina@example.test"); status != http.StatusBadRequest {
			t.Fatalf("X-User-Email on a site reading X-Auth-User: %d %+v", status, a)
		}
	})

	t.Run("cross-site requests are refused", func(t *testing.T) {
		reset(t, in, "sbx")
		for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
			status, a := get(t, in, "site", "X-User-Email", "henry@example.test", h[0], h[1])
			if status != http.StatusForbidden || a.Token != "" {
				t.Fatalf("%s: %d %+v", h[0], status, a)
			}
		}
		if n := len(calls(t, in, "sbx")); n != 0 {
			t.Fatalf("the sandbox was called: %v", calls(t, in, "sbx"))
		}
		mustToken(t, in, "site", "henry@example.test") // same-origin is fine
	})

	t.Run("GET only", func(t *testing.T) {
		status, _, body := testcaddy.Do(t, c, "POST", in.URL("site", "/api/token"), strings.NewReader("{}"), "X-User-Email", ann)
		if status != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d %s", status, body)
		}
	})

	t.Run("emulator answers as documented", func(t *testing.T) {
		reset(t, in, "sbx")
		seal := func(key, secret, hash string) string {
			b, _ := json.Marshal(map[string]string{"client_key": key, "client_secret": secret, "user_hash": hash})
			k, _ := focalx.ParseKey(hexKey)
			env, err := focalx.Seal(focalx.CBC, k, b)
			if err != nil {
				t.Fatal(err)
			}
			return env
		}
		good := seal(clientKey, clientSecret, focalx.UserHash(ann))
		for _, tc := range []struct {
			name, method, path, auth, pub string
			status                        int
		}{
			{"documented", "GET", "/GetToken?clientKey=" + clientKey, good, pubKey, 200},
			{"curl example", "POST", "/?clientKey=" + clientKey, good, pubKey, 200},
			{"wrong clientKey query", "GET", "/GetToken?clientKey=nope", good, pubKey, 401},
			{"no clientKey query", "GET", "/GetToken", good, pubKey, 401},
			{"no auth", "GET", "/GetToken?clientKey=" + clientKey, "", pubKey, 401},
			{"auth not an envelope", "GET", "/GetToken?clientKey=" + clientKey, "7zqTet0zah83+ZH", pubKey, 401},
			{"auth not JSON", "GET", "/GetToken?clientKey=" + clientKey, sealRaw(t, "not json"), pubKey, 401},
			{"wrong client_key inside", "GET", "/GetToken?clientKey=" + clientKey, seal("other", clientSecret, focalx.UserHash(ann)), pubKey, 401},
			{"wrong client_secret", "GET", "/GetToken?clientKey=" + clientKey, seal(clientKey, "nope", focalx.UserHash(ann)), pubKey, 402},
			{"wrong pubKey", "GET", "/GetToken?clientKey=" + clientKey, good, "nope", 403},
			{"no pubKey", "GET", "/GetToken?clientKey=" + clientKey, good, "", 403},
			{"user_hash not MD5", "GET", "/GetToken?clientKey=" + clientKey, seal(clientKey, clientSecret, ann), pubKey, 400},
			{"user_hash too short", "GET", "/GetToken?clientKey=" + clientKey, seal(clientKey, clientSecret, "abcd"), pubKey, 400},
			{"DELETE", "DELETE", "/GetToken?clientKey=" + clientKey, good, pubKey, 405},
		} {
			h := []string{}
			if tc.auth != "" {
				h = append(h, "auth", tc.auth)
			}
			if tc.pub != "" {
				h = append(h, "pubKey", tc.pub)
			}
			status, _, body := testcaddy.Do(t, c, tc.method, in.URL("sbx", tc.path), nil, h...)
			if status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
				continue
			}
			if status == 200 {
				var out tokenAnswer
				_ = json.Unmarshal([]byte(body), &out)
				if _, hash := whoami(t, in, "sbx", out.Token); hash != focalx.UserHash(ann) || out.ExpiryTime != "2:00:00" {
					t.Errorf("%s: %s; whoami %q", tc.name, body, hash)
				}
			}
		}
		want := map[string]int{"focalx GetToken ok": 5, "focalx GetToken bad_client_key": 3, "focalx GetToken undecryptable": 3,
			"focalx GetToken bad_client_secret": 1, "focalx GetToken bad_pub_key": 2, "focalx whoami token": 2}
		got := calls(t, in, "sbx")
		for k, v := range want {
			if got[k] != v {
				t.Errorf("calls %v, want %v", got, want)
				break
			}
		}
		for _, tok := range []string{"", "garbage", annToken.Token + "x"} {
			if status, _ := whoami(t, in, "sbx", tok); status != http.StatusUnauthorized {
				t.Errorf("whoami %q: %d", tok, status)
			}
		}
	})

	t.Run("expired token is refused by whoami", func(t *testing.T) {
		a := mustToken(t, in, "expired", ann) // lifetime 1ns: expired when it arrives
		if status, _, body := testcaddy.Do(t, c, "GET", in.URL("sbxexp", "/__focalx/whoami"), nil, "Authorization", "Bearer "+a.Token); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
			t.Fatalf("whoami: %d %s", status, body)
		}
	})

	t.Run("no session is stored", func(t *testing.T) {
		if stored := testcaddy.Snapshot(t, in.Storage); len(stored) != 0 {
			t.Fatalf("token requests stored sessions: %v", stored)
		}
	})

	t.Run("logs hold no e-mail and no secret", func(t *testing.T) {
		logs := in.Logs()
		// The user hash is an unsalted MD5 of the e-mail (reversible by a
		// dictionary): logs name the user by a digest of it instead.
		if !strings.Contains(logs, session.LogID(focalx.UserHash(ann))) {
			t.Fatalf("the provider calls are not logged with the user's digest:\n%s", logs)
		}
		for _, s := range []string{ann, "example.test", focalx.UserHash(ann), clientKey, clientSecret, pubKey, hexKey, b64Key} {
			if strings.Contains(logs, s) {
				t.Errorf("the logs contain %q", s)
			}
		}
	})
}

func mustTokenHeader(t *testing.T, in *testcaddy.Instance, port, header, email string) tokenAnswer {
	t.Helper()
	status, a := get(t, in, port, header, email)
	if status != http.StatusOK || a.Token == "" {
		t.Fatalf("token for %s on %s: %d %+v", email, port, status, a)
	}
	return a
}

// sealRaw seals arbitrary bytes with the sandbox's key.
func sealRaw(t *testing.T, plain string) string {
	k, _ := focalx.ParseKey(hexKey)
	env, err := focalx.Seal(focalx.CBC, k, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return env
}
