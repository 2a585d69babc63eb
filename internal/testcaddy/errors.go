package testcaddy

import (
	"io"
	"strings"
	"testing"
)

// ErrorCase is a request expected to fail with a JSON error.
type ErrorCase struct {
	Method, Path, Body string
	Header             []string
	Status             int
	// Msg must appear in the error message.
	Msg string
}

// CheckErrors sends every case to base+Path and checks the exact status, a
// JSON body {"success": false, "error": <containing Msg>} and a JSON content
// type. It insists on at least min cases.
func CheckErrors(t *testing.T, base string, min int, cases []ErrorCase) {
	t.Helper()
	if len(cases) < min {
		t.Fatalf("only %d cases, want at least %d", len(cases), min)
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.Body != "" {
			body = strings.NewReader(tc.Body)
		}
		status, hdr, out := Do(t, Client(), tc.Method, base+tc.Path, body, tc.Header...)
		m := JSON(t, out)
		msg, _ := m["error"].(string)
		if status != tc.Status || m["success"] != false || !strings.Contains(msg, tc.Msg) {
			t.Errorf("%s %.60s %.40s %q: %d %v, want %d and %q", tc.Method, tc.Path, tc.Body, tc.Header, status, m, tc.Status, tc.Msg)
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.Method, tc.Path, ct)
		}
	}
}

// Case builds an ErrorCase; tables of them stay one line a case.
func Case(method, path, body string, header []string, status int, msg string) ErrorCase {
	return ErrorCase{Method: method, Path: path, Body: body, Header: header, Status: status, Msg: msg}
}

// KitCases are the bad requests every kit provider answers alike (the core
// serves its routes): no session, an unknown route, a method a route does
// not take, a webhook without a signature and, with tokenRoute, the token
// route without a session.
func KitCases(tokenRoute bool) []ErrorCase {
	cases := []ErrorCase{
		Case("GET", "/api/session", "", nil, 401, "no session: call /api/start first"),
		Case("GET", "/api/unknown", "", nil, 404, "unknown route /api/unknown"),
		Case("PUT", "/api/start", "", nil, 405, "method PUT is not allowed on /api/start"),
		Case("GET", "/api/webhook", "", nil, 405, "method GET is not allowed on /api/webhook"),
		Case("POST", "/api/webhook", `{}`, nil, 401, "webhook signature is missing or wrong"),
	}
	if tokenRoute {
		cases = append(cases, Case("POST", "/api/token", "", nil, 405, "method POST is not allowed on /api/token"),
			Case("GET", "/api/token", "", nil, 401, "session"))
	}
	return cases
}

// CheckProvisionErrors proves that each provider block (the lines inside
// the block named name of an idv handler) fails to load with an error
// containing its want.
func CheckProvisionErrors(t *testing.T, name string, blocks map[string]string) {
	t.Helper()
	for block, want := range blocks {
		err := LoadError(t, "http://127.0.0.1:@@site@@ {\n\tidv {\n\t\t"+name+" {\n\t\t\t"+block+"\n\t\t}\n\t}\n}")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", block, err, want)
		}
	}
}
