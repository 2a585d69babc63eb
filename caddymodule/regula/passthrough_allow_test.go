package regula_test

import (
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestPassthroughAllow: passthrough_allow narrows the forwarded paths to its
// patterns (the rest is a 403 that never reaches the platform), and the
// billable calls stay refused whatever it lists.
func TestPassthroughAllow(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		regula {
			host              http://127.0.0.1:@@sandbox@@
			api_key           `+apiKey+`
			workflow_id       wf-test
			passthrough_allow echo sessions/*/**
			passthrough_allow device/**
		}
		session_quota off
	}
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		regula {
			api_key     `+apiKey+`
			workflow_id wf-test
		}
	}
}`)
	c := testcaddy.Client()
	if st, _, body := testcaddy.Do(t, c, "GET", in.URL("site", "/api/start"), nil); st != 200 {
		t.Fatalf("start: %d %s", st, body)
	}
	testcaddy.Reset(t, in.URL("sandbox", ""))
	for _, tc := range []struct {
		method, path string
		status       int // 0: forwarded, whatever the platform answers
		msg          string
	}{
		{"GET", "/api/idv/echo", 0, ""},
		{"GET", "/api/idv/sessions/abc/files", 0, ""},
		{"GET", "/api/idv/anything", 403, "not forwarded"},
		{"POST", "/api/idv/device/ephemeral", 403, "goes through /api/start"},
		{"POST", "/api/idv/sessions", 403, "goes through /api/start"},
	} {
		before := len(testcaddy.Requests(t, in.URL("sandbox", "")))
		st, _, body := testcaddy.Do(t, c, tc.method, in.URL("site", tc.path), strings.NewReader("{}"), "X-IDV", "1")
		reached := len(testcaddy.Requests(t, in.URL("sandbox", ""))) - before
		if tc.status == 0 {
			if reached != 1 {
				t.Errorf("%s %s: not forwarded: %d %s", tc.method, tc.path, st, body)
			}
			continue
		}
		if st != tc.status || !strings.Contains(body, tc.msg) || reached != 0 {
			t.Errorf("%s %s: %d %s (%d requests reached the platform)", tc.method, tc.path, st, body, reached)
		}
	}
}

// TestPassthroughAllowMalformed: a pattern that could never match as meant
// is a configuration error, not a silent refusal.
func TestPassthroughAllowMalformed(t *testing.T) {
	for _, pat := range []string{"/sessions", "sessions//x", "**/x", "[x"} {
		err := testcaddy.LoadError(t, `
http://127.0.0.1:@@site@@ {
	idv {
		regula {
			host              http://127.0.0.1:@@site@@
			api_key           k
			workflow_id       wf
			passthrough_allow `+pat+`
		}
	}
}`)
		if err == nil || !strings.Contains(err.Error(), "path pattern") {
			t.Errorf("%q: %v", pat, err)
		}
	}
}
