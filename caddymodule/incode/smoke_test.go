package incode_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func TestSmoke(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key k
			flow_id f
			client_id c
		}
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
		}
	}
}`)
	c := testcaddy.Client()
	status, _, body := testcaddy.Do(t, c, "GET", in.URL("site", "/api/start"), nil)
	if status != http.StatusOK || !strings.Contains(body, `"uniqueId"`) {
		t.Fatalf("start: %d %s", status, body)
	}
	status, _, body = testcaddy.Do(t, c, "GET", in.URL("site", "/other"), nil)
	if status != http.StatusOK || body != "frontend" {
		t.Fatalf("frontend: %d %s", status, body)
	}
}
