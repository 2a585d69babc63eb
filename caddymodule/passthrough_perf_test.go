package caddymodule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/caddymodule"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestCookiePassthroughTokenFromMemory: the passthrough bound by the session
// cookie finds the token without reading storage once it has read it, and
// a session deleted from storage (by another node of a cluster) stops
// working once its cache entry is older than CredCacheTTL.
func TestCookiePassthroughTokenFromMemory(t *testing.T) {
	in := testcaddy.Start(t, cfg("storage_namespace pt"))
	c := testcaddy.Client()
	ob := startSession(t, in, c)
	id := ob["uniqueId"].(string)
	score := in.URL("site", "/api/0/omni/get/score")
	if status, _, m := do(t, c, "GET", score, "", "X-IDV", "1"); status != 200 {
		t.Fatalf("passthrough with the cookie: %d %v", status, m)
	}
	endStored(t, in.Storage, "pt", id)
	if status, _, m := do(t, c, "GET", score, "", "X-IDV", "1"); status != 200 {
		t.Fatalf("a cached token needed storage: %d %v", status, m)
	}
	// With entries that live 1 ns, a second browser's session deleted from
	// storage is refused at its next call.
	defer func(d time.Duration) { caddymodule.CredCacheTTL = d }(caddymodule.CredCacheTTL)
	caddymodule.CredCacheTTL = time.Nanosecond
	c2 := testcaddy.Client()
	id2 := startSession(t, in, c2)["uniqueId"].(string)
	if status, _, m := do(t, c2, "GET", score, "", "X-IDV", "1"); status != 200 {
		t.Fatalf("passthrough with the second cookie: %d %v", status, m)
	}
	endStored(t, in.Storage, "pt", id2)
	if status, _, m := do(t, c2, "GET", score, "", "X-IDV", "1"); status != 401 {
		t.Fatalf("a session deleted from storage still worked after CredCacheTTL: %d %v", status, m)
	}
}

// endStored ends a stored session as another node of a cluster would: it
// expires it in storage, behind the handler's back (sessions on the file
// storage live in its database, shared within the process).
func endStored(t *testing.T, root, ns, id string) {
	t.Helper()
	st := &session.StorageStore{Storage: &certmagic.FileStorage{Path: root}, Namespace: ns}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Update(context.Background(), id, func(s *session.Session) (bool, error) {
		s.ExpiresAt = time.Now().Add(-time.Second)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// uploadSink stands in for the provider: it counts requests and whether
// each body arrived whole.
type uploadSink struct {
	mu       sync.Mutex
	requests int
	complete int
}

func (s *uploadSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.requests++
	if err == nil {
		s.complete++
	}
	s.mu.Unlock()
	fmt.Fprintf(w, `{"read":%d}`, n)
}

func (s *uploadSink) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.complete
}

func uploadCfg(api string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url %s
			api_key k
			flow_id f
			client_id c
		}
		max_upload 1KiB
	}
	respond "frontend"
}`, api)
}

// TestMaxUpload: a body above max_upload gets 413; with a Content-Length
// the provider never hears of it, a chunked body is cut at the limit.
func TestMaxUpload(t *testing.T) {
	sink := &uploadSink{}
	up := httptest.NewServer(sink)
	defer up.Close()
	in := testcaddy.Start(t, uploadCfg(up.URL))
	u := in.URL("site", "/api/0/omni/add/front-id/v2")
	post := func(body io.Reader, size int64) (int, string) {
		req, _ := http.NewRequest("POST", u, body)
		req.ContentLength = size
		req.Header.Set("X-Incode-Hardware-Id", "tok")
		resp, err := testcaddy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := post(strings.NewReader(strings.Repeat("a", 1024)), 1024); status != 200 || !strings.Contains(body, `"read":1024`) {
		t.Fatalf("a body at the limit: %d %s", status, body)
	}
	if status, body := post(strings.NewReader(strings.Repeat("a", 1025)), 1025); status != 413 || !strings.Contains(body, "max_upload") {
		t.Fatalf("a declared body over the limit: %d %s", status, body)
	}
	if n, _ := sink.counts(); n != 1 {
		t.Fatalf("the provider saw %d requests, want 1 (the oversized one must not reach it)", n)
	}
	// Chunked (no Content-Length): a reader the client cannot size.
	status, body := post(io.MultiReader(strings.NewReader(strings.Repeat("b", 4096))), -1)
	if status != 413 || !strings.Contains(body, "max_upload") {
		t.Fatalf("a chunked body over the limit: %d %s", status, body)
	}
	if _, complete := sink.counts(); complete != 1 {
		t.Fatalf("%d bodies reached the provider whole, want 1 (the chunked one must be cut)", complete)
	}
}
