package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// TestKitFirstEmulatorsRoutes: what the first emulators' routes need of the
// kit: prefix routes after exact ones (a known path with another method is
// a 405, never the prefix route), routes for any method, sandbox-only
// routes left out of the records, refused methods counted first when asked,
// the method in an op, and the records a Caller gives.
func TestKitFirstEmulatorsRoutes(t *testing.T) {
	k := testKit()
	answer := func(name string) func(http.ResponseWriter, *http.Request, map[string]string) {
		return func(w http.ResponseWriter, _ *http.Request, p map[string]string) {
			WriteJSON(w, 200, map[string]string{"route": name, "rest": p["*"]})
		}
	}
	k.Error, k.RecordRefused, k.MethodMessage = nil, true, "method not allowed"
	k.Caller = func(r *http.Request, _ *KitRoute) Caller {
		return Caller{Cred: "key+" + r.Header.Get("X-Tok"), APIKey: true, Executive: r.Header.Get("X-Tok") != ""}
	}
	k.Routes = []KitRoute{
		{Pattern: "/page/*", Handle: answer("page")},
		{Methods: []string{"POST"}, Pattern: "/omni/start", Op: "omni/start", Handle: answer("start")},
		{Pattern: "/omni/*", Op: "omni/*", Handle: answer("generic")},
		{Pattern: "/hosted", Op: "hosted {method}", Handle: answer("hosted")},
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/page/abc", `"rest":"abc"`},
		{"POST", "/omni/start", `"route":"start"`},
		{"PUT", "/omni/x/y", `"rest":"x/y"`},
		{"GET", "/omni/start", `"message":"method not allowed"`},
		{"PATCH", "/hosted", `"route":"hosted"`},
	} {
		w, ok := serve(k, tc.method, tc.path, "X-Tok", "t")
		if !ok || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s: %v %d %s, want %s", tc.method, tc.path, ok, w.Code, w.Body, tc.want)
		}
	}
	want := map[string]int{"demo omni/start key+t": 2, "demo omni/* key+t": 1, "demo hosted PATCH key+t": 1}
	if got := k.Host.Calls.Snapshot(); len(got) != len(want) || got["demo omni/start key+t"] != 2 || got["demo hosted PATCH key+t"] != 1 {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if rs := k.Host.Requests.Snapshot(); len(rs) != 4 || !rs[0].Executive || !rs[0].APIKey {
		t.Fatalf("requests %v", rs)
	}
	// A refused method meets the faults first; the error is in the shape
	// (Incode's by default) with the Allow header.
	k.Host.Faults.Add(Fault{Provider: "demo", Op: "omni/start", Status: 429, Times: 1})
	if w, _ := serve(k, "GET", "/omni/start"); w.Code != 429 || !strings.Contains(w.Body.String(), `"path":"/omni/start"`) {
		t.Fatalf("fault on a refused method: %d %s", w.Code, w.Body)
	}
	if w, _ := serve(k, "GET", "/omni/start"); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Fatalf("405: %d %v", w.Code, w.Header())
	}
}

// TestConcurrentSends: sends share their emulator's settings; each works on
// a copy with the defaults filled in (go test -race).
func TestConcurrentSends(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	wh := &Webhooks{URL: srv.URL}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			if i%2 == 0 {
				wh.Send(zap.NewNop(), map[string]int{"i": i}, done)
			} else {
				wh.SendSigned(zap.NewNop(), []byte(`{}`), nil, nil, done)
			}
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wh.Attempts != 0 || wh.First != 0 {
		t.Fatalf("a send wrote the shared settings: %+v", wh)
	}
}

func TestEmulatorBlockOptions(t *testing.T) {
	parse := func(src string) (*Webhooks, *string, error) {
		wh, key := &Webhooks{}, new(string)
		err := ParseBlock(caddyfile.NewTestDispenser(src), "idv_sandbox demo", wh.Options(map[string]provider.Option{
			"api_key": provider.String(key), "webhook_auth": SignedWebhooks("Demo"),
		}, "webhook_url", "webhook_retry"))
		return wh, key, err
	}
	wh, key, err := parse("demo {\n api_key a\n api_key b\n webhook_url http://x/hook\n webhook_retry 1s 2 3\n}")
	if err != nil || *key != "b" || wh.URL != "http://x/hook" || wh.Attempts != 3 || wh.Factor != 2 {
		t.Fatalf("%v: key %q, %+v", err, *key, wh)
	}
	for src, want := range map[string]string{
		"demo {\n webhook_auth header X y\n}": "idv_sandbox demo: webhook_auth: Demo signs its webhooks: there is no webhook_auth",
		"demo {\n webhook_retry 1s 0.5 3\n}":  "webhook_retry: factor must be a number >= 1",
		"demo {\n webhook_retry 1s 2\n}":      "webhook_retry takes 3 values",
		"demo {\n nope 1\n}":                  `unknown option "nope"`,
	} {
		if _, _, err := parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	wh = &Webhooks{}
	err = ParseBlock(caddyfile.NewTestDispenser("demo {\n webhook_auth oauth2 id secret http://t/token\n}"), "demo", wh.Options(map[string]provider.Option{}))
	if err != nil || wh.Auth != "oauth2" || wh.TokenURL != "http://t/token" {
		t.Fatalf("%v %+v", err, wh)
	}
}

// TestNoEmulatorBlock: the error lists the emulators from Caddy's registry
// (none in this package's test binary), naming no provider itself.
func TestNoEmulatorBlock(t *testing.T) {
	err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("idv_sandbox {\n}"))
	if err == nil || !strings.Contains(err.Error(), "at least one provider block () is required") {
		t.Fatalf("%v", err)
	}
}
