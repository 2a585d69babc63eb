package passthrough

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.uber.org/zap"
)

func TestHeadersStrippedBothWays(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "Alt-Svc", "Clear-Site-Data", "Strict-Transport-Security"} {
			w.Header().Set(h, "x")
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
		_ = json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "path": r.URL.EscapedPath(), "host": r.Host})
	}))
	defer upstream.Close()
	base, _ := url.Parse(upstream.URL)
	p := New(base, "/0/omni/", http.DefaultTransport, zap.NewNop())

	req := httptest.NewRequest("GET", "http://app.example/api/omni/get/score", nil)
	for _, h := range append(Strip, "X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Ssl") {
		req.Header.Set(h, "client-value")
	}
	req.Header.Set("Accept-Language", "fr")
	w := httptest.NewRecorder()
	w.Header().Set("Cache-Control", "no-store") // as the core sets it on every answer
	if err := p.Forward(w, req, "get/score", http.Header{"X-Incode-Hardware-Id": {"session-token"}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Headers map[string][]string
		Path    string
		Host    string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, w.Body.String())
	}
	if got.Path != "/0/omni/get/score" || got.Host != base.Host {
		t.Fatalf("forwarded to %s%s", got.Host, got.Path)
	}
	for name, v := range got.Headers {
		if len(v) > 0 && v[0] == "client-value" {
			t.Errorf("forwarded the client's %s", name)
		}
	}
	if got.Headers["X-Incode-Hardware-Id"][0] != "session-token" || got.Headers["Accept-Language"][0] != "fr" {
		t.Fatalf("headers: %v", got.Headers)
	}
	for _, h := range StripResponse {
		if h != "Content-Security-Policy" && w.Header().Get(h) != "" {
			t.Errorf("relayed the provider's %s", h)
		}
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Content-Security-Policy") != "sandbox; default-src 'none'" {
		t.Fatalf("response headers: %v", w.Header())
	}

	// One session's answer: never stored by a cache on the way.
	if cc := w.Header().Values("Cache-Control"); len(cc) != 1 || cc[0] != "no-store" || w.Header().Get("Expires") != "" {
		t.Fatalf("Cache-Control %q, Expires %q; want only no-store", cc, w.Header().Get("Expires"))
	}

	up := httptest.NewRequest("GET", "http://app.example/api/omni/ws", nil)
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", "websocket")
	if err := p.Forward(httptest.NewRecorder(), up, "ws", nil); err == nil {
		t.Fatal("an upgrade was proxied")
	}
}
