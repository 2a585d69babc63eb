package sandbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func testKit() *Kit {
	st := &state{calls: NewCalls(), requests: &RequestLog{}, faults: &Faults{}, signer: NewSigner(), shared: map[string]any{}}
	h := &Host{Logger: zap.NewNop(), Calls: st.calls, Requests: st.requests, Faults: st.faults, Signer: st.signer, state: st}
	return &Kit{
		Provider: "demo", Host: h,
		Routes: []KitRoute{
			{Methods: []string{"POST"}, Pattern: "/v1/things", Op: "v1/things", Handle: func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
				WriteJSON(w, 201, map[string]string{"ok": "created"})
			}},
			{Methods: []string{"GET"}, Pattern: "/v1/things/{id}/state", Op: "v1/things/{id}/state", Handle: func(w http.ResponseWriter, r *http.Request, p map[string]string) {
				WriteJSON(w, 200, map[string]string{"id": p["id"]})
			}},
		},
		Error: func(w http.ResponseWriter, status int, msg string) {
			WriteJSON(w, status, map[string]any{"status": "fail", "message": msg})
		},
		Credential: func(r *http.Request) string {
			if r.Header.Get("X-Key") == "k" {
				return CredAPIKey
			}
			return CredNone
		},
	}
}

func serve(k *Kit, method, path string, hdr ...string) (*httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	return w, k.Serve(w, r)
}

func TestKitDispatch(t *testing.T) {
	k := testKit()
	if w, ok := serve(k, "GET", "/v1/things/abc/state", "X-Key", "k"); !ok || w.Code != 200 || !strings.Contains(w.Body.String(), `"id":"abc"`) {
		t.Fatalf("param route: %v %d %s", ok, w.Code, w.Body)
	}
	if _, ok := serve(k, "GET", "/v1/things//state"); ok {
		t.Fatal("an empty segment matched {id}")
	}
	if _, ok := serve(k, "GET", "/elsewhere"); ok {
		t.Fatal("an unknown path was answered")
	}
	w, ok := serve(k, "DELETE", "/v1/things")
	if !ok || w.Code != 405 || w.Header().Get("Allow") != "POST" || !strings.Contains(w.Body.String(), `"status":"fail"`) {
		t.Fatalf("method check: %d %v %s", w.Code, w.Header(), w.Body)
	}
	calls := k.Host.Calls.Snapshot()
	if calls["demo v1/things/{id}/state api_key"] != 1 || len(calls) != 1 {
		t.Fatalf("calls %v", calls)
	}
	if rs := k.Host.Requests.Snapshot(); len(rs) != 1 || !rs[0].APIKey || rs[0].Path != "/v1/things/abc/state" {
		t.Fatalf("requests %v", rs)
	}
	// A fault is answered in the provider's shape, Times times.
	k.Host.Faults.Add(Fault{Provider: "demo", Op: "v1/things", Status: 503, RetryAfter: 2, Times: 1})
	w, _ = serve(k, "POST", "/v1/things")
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" || !strings.Contains(w.Body.String(), `"status":"fail"`) {
		t.Fatalf("fault: %d %s", w.Code, w.Body)
	}
	if w, _ = serve(k, "POST", "/v1/things"); w.Code != 201 {
		t.Fatalf("after the fault: %d", w.Code)
	}
}

func TestOutcomePage(t *testing.T) {
	w := httptest.NewRecorder()
	WriteOutcomePage(w, `<b>"x"</b>`, "/v/tok?a=1&b=2", []Outcome{{"approved", "Pass"}, {"declined", "Fail"}})
	body := w.Body.String()
	if strings.Contains(body, `<b>"x"</b>`) || !strings.Contains(body, `value="approved"`) || !strings.Contains(body, `action="/v/tok?a=1&amp;b=2"`) {
		t.Fatalf("page:\n%s", body)
	}
	// Styled like the other stand-ins: the badge, and no form-action that
	// would stop the answer's redirect back to the site.
	if !strings.Contains(body, `id="sandbox-badge"`) || strings.Contains(w.Header().Get("Content-Security-Policy"), "form-action") {
		t.Fatalf("page not in the sandbox shell, or form-action set (%q):\n%s", w.Header().Get("Content-Security-Policy"), body)
	}
	r := httptest.NewRequest("POST", "/v/tok", strings.NewReader("outcome=declined"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := ReadOutcome(r, []Outcome{{"approved", ""}, {"declined", ""}}); got != "declined" {
		t.Fatalf("outcome %q", got)
	}
	r = httptest.NewRequest("POST", "/v/tok", strings.NewReader("outcome=other"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := ReadOutcome(r, []Outcome{{"approved", ""}}); got != "" {
		t.Fatalf("unknown outcome read as %q", got)
	}
}

func TestSendSignedRetriesWithSignature(t *testing.T) {
	var mu sync.Mutex
	var sigs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sigs = append(sigs, r.Header.Get("X-Sig")+"|"+string(b))
		n := len(sigs)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	t.Setenv("KIT_TEST_HOOK", srv.URL)
	wh := &Webhooks{URL: "{env.KIT_TEST_HOOK}/hook", First: caddy.Duration(5 * time.Millisecond), Factor: 2, Attempts: 4}
	done := make(chan error, 1)
	wh.SendSigned(zap.NewNop(), []byte(`{"a":1}`), func(b []byte) http.Header {
		return http.Header{"X-Sig": {"sig-of-" + string(b)}}
	}, func(s int) bool { return s == 200 }, done)
	if err := <-done; err != nil {
		t.Fatalf("not delivered: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sigs) != 3 || sigs[2] != `sig-of-{"a":1}|{"a":1}` {
		t.Fatalf("deliveries %v", sigs)
	}
}
