package session_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/caddyserver/certmagic"

	_ "github.com/caddy-idv/caddy-idv" // the idv handler, the providers, the sandbox
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestMain(m *testing.M) { os.Exit(testcaddy.Main(m)) }

// A new session is one durable write: /api/start and /api/onboarding-url
// each commit one transaction (the session, its index and its expiry
// entry, the onboarding URL included), with no second write (a later
// Update, a claim, a record in Caddy's storage). Requests one at a time, so
// that no two share a commit.
func TestNewSessionIsOneWrite(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key sandbox-key
			flow_id sandbox-flow
			client_id sandbox-client
		}
		session_quota off
	}
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key sandbox-key
			flow_id sandbox-flow
			client_id sandbox-client
		}
	}
}`)
	c := &http.Client{} // no cookie jar: each request is a new browser
	// The handler's database, shared by every store of the directory in
	// this process, so its counts are the handler's.
	st := &session.StorageStore{Storage: &certmagic.FileStorage{Path: in.Storage}, Namespace: "count"}
	t.Cleanup(st.Close)
	// The first session also creates the namespace's buckets.
	if status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", "/api/start"), nil); status != 200 {
		t.Fatalf("/api/start: %d %s", status, body)
	}
	before := st.WriteStats()
	const n = 5
	for _, route := range []string{"/api/start", "/api/onboarding-url"} {
		for range n {
			if status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", route), nil); status != 200 {
				t.Fatalf("%s: %d %s", route, status, body)
			}
		}
	}
	after := st.WriteStats()
	if w, c := after.Writes-before.Writes, after.Commits-before.Commits; w != 2*n || c != 2*n {
		t.Fatalf("%d new sessions made %d writes in %d commits, want one each", 2*n, w, c)
	}
}
