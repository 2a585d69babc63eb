package incode_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/passthrough"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// raw sends a request line and headers as they are, so nothing is cleaned
// or escaped on the way, and returns the status (0 if the server closed).
func raw(t *testing.T, addr, target string, headers ...string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\n", target)
	hasHost := false
	for _, h := range headers {
		hasHost = hasHost || strings.HasPrefix(strings.ToLower(h), "host:")
		b.WriteString(h + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: " + addr + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostilePassthrough feeds hostile paths and headers to the passthrough
// routes with a valid session token attached (so only the path checks stand
// between the request and the provider) and asserts that the provider
// received either nothing or a request inside /0/omni/ on its own host,
// never with the API key or an executive token.
func TestHostilePassthrough(t *testing.T) {
	e := start(t, "", admin)
	_, ob := e.get(testcaddy.Client(), "/start")
	tok := "X-Incode-Hardware-Id: " + m2s(ob, "token")
	addr := strings.TrimPrefix(e.in.URL("site", ""), "http://")
	sbHost := strings.TrimPrefix(e.sb(), "http://")
	long := "/api/omni/" + strings.Repeat("a", passthrough.MaxPathLen+10)

	cases := []struct {
		target  string
		headers []string
		refuse  bool // must not reach the provider at all
	}{
		{"/api/omni/../executive/log-in", nil, true},
		{"/api/omni/../../executive/log-in", nil, true},
		{"/api/0/omni/../../omni/start", nil, true},
		{"/api/omni/./get/score", nil, true},
		{"/api/omni/get/./score", nil, true},
		{"/api/omni/get/score/..", nil, true},
		{"/api/omni/.", nil, true},
		{"/api/omni/%2e%2e/executive/log-in", nil, true},
		{"/api/omni/%2E%2E/%2E%2E/omni/start", nil, true},
		{"/api/omni/.%2e/x", nil, true},
		{"/api/omni/%2e./x", nil, true},
		{"/api/omni/get/score/%2e", nil, true},
		{"/api/omni/get%2fscore", nil, true},
		{"/api/omni/..%2fexecutive%2flog-in", nil, true},
		{"/api/omni%2f..%2f..%2fexecutive", nil, true},
		{"/api/0%2fomni/get/score", nil, true},
		{"/api/omni/..%5cexecutive", nil, true},
		{"/api/omni/a%5c..%5c..%5cx", nil, true},
		{`/api/omni\..\executive`, nil, true},
		{"/api/omni//evil.example/x", nil, true},
		{"/api/0/omni//evil.example/x", nil, true},
		{"/api/omni/%252e%252e/x", nil, true},
		{"/api/omni/%c0%ae%c0%ae/x", nil, true},
		{"/api/omni/..;/executive/log-in", nil, true},
		{"/api/omni/get;/../../x", nil, true},
		{"/api/omni/%3b..%3b/x", nil, true},
		{"/api/omni/a%00b", nil, true},
		{"/api/omni/a%0d%0aX-Injected:%201", nil, true},
		{"/api/omni/get/score\r\nX-Injected: 1", nil, true},
		{"/api/omni/get/score#frag", nil, true},
		{long, nil, true},
		{"/api/%2e%2e/omni/start", nil, true},
		{"//evil.example/api/omni/get/score", nil, true},
		{"http://evil.example/api/omni/get/score", nil, true},
		{"http://user@evil.example/api/omni/get/score", nil, true},
		{"/API/omni/get/score", nil, true},
		{"/api/omni/get/score", []string{"Host: evil.example"}, true},
		// These reach the provider, and must stay inside the root on its host.
		{"/api/omni/@evil.example/x", nil, false},
		{"/api/omni/get/score?url=http://evil.example/../../x", nil, false},
		{"/api/omni/get/score", []string{"X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https", "Forwarded: host=evil.example"}, false},
		{"/api/omni/get/score", []string{"X-Api-Key: attacker-key", "Authorization: Basic eDp5", "Cookie: a=b"}, false},
		{"/api/0/omni/get/score", []string{"X-Original-URL: /executive/log-in", "X-Rewrite-URL: /executive/log-in"}, false},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		testcaddy.Reset(t, e.sb())
		headers := append([]string{tok}, tc.headers...)
		status := raw(t, addr, tc.target, headers...)
		got := testcaddy.Requests(t, e.sb())
		name := fmt.Sprintf("%q %v -> %d", tc.target, tc.headers, status)
		if tc.refuse && len(got) > 0 {
			t.Errorf("%s: reached the provider: %+v", name, got)
		}
		if !tc.refuse && (status != 200 || len(got) != 1) {
			t.Errorf("%s: want one request at the provider, got %+v", name, got)
		}
		for _, r := range got {
			u, err := url.Parse(r.Path)
			if err != nil || !passthrough.Within("/0/omni/", u.EscapedPath()) || r.Host != sbHost || r.APIKey || r.Executive {
				t.Errorf("%s: the provider received %+v", name, r)
			}
		}
	}
}
