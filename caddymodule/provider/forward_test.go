package provider

import (
	"net/http"
	"strings"
	"testing"
)

func TestPathRuleMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, method, suffix string
		methods                 []string
		want                    bool
	}{
		{"**", "GET", "a", nil, true},
		{"**", "GET", "a/b/c", nil, true},
		{"device/**", "GET", "device", nil, true},
		{"device/**", "GET", "Device/Ephemeral", nil, true},
		{"device/**", "GET", "devices", nil, false},
		{"v1/deeplink*/**", "POST", "v1/deeplink", nil, true},
		{"v1/deeplink*/**", "POST", "v1/deeplinks/x", nil, true},
		{"v1/deeplink*/**", "POST", "v1/other", nil, false},
		{"sessions", "POST", "sessions", []string{"POST"}, true},
		{"sessions", "GET", "sessions", []string{"POST"}, false},
		{"sessions", "POST", "sessions/1", nil, false},
		{"sessions/*", "GET", "sessions/1", nil, true},
		{"sessions/*", "GET", "sessions/1/files", nil, false},
		{"a/**/b", "GET", "a/**/b", nil, true}, // "**" only means "the rest" last
		{"[", "GET", "[", nil, false},          // a bad pattern matches nothing
	} {
		if got := (PathRule{Pattern: tc.pattern, Methods: tc.methods}).Match(tc.method, tc.suffix); got != tc.want {
			t.Errorf("%q %s %q: %v, want %v", tc.pattern, tc.method, tc.suffix, got, tc.want)
		}
	}
}

func TestNotMethods(t *testing.T) {
	deny := PathRule{Pattern: "sessions", NotMethods: []string{"GET", "HEAD"}, Deny: true}
	for _, m := range []string{"POST", "PUT", "OPTIONS", "PROPFIND"} {
		if !deny.Match(m, "sessions") {
			t.Errorf("%s sessions is not denied", m)
		}
	}
	if deny.Match("GET", "sessions") || deny.Match("HEAD", "sessions") {
		t.Error("GET or HEAD sessions is denied")
	}
}

func TestPathRuleCheck(t *testing.T) {
	for pat, ok := range map[string]bool{"**": true, "a/*/b": true, "v1/deeplink*/**": true, "a/**": true,
		"/a": false, "a/": false, "a//b": false, "**/a": false, "a/**b": false, "[": false, "": false} {
		if err := (PathRule{Pattern: pat}).Check(); (err == nil) != ok {
			t.Errorf("%q: %v", pat, err)
		}
	}
}

func TestAllowedFailsClosed(t *testing.T) {
	rules := []PathRule{{Pattern: "x/**", Deny: true, Reason: "no x"}, {Pattern: "y/*"}}
	for suffix, want := range map[string]string{"x/1": "no x", "y/1": "", "y/1/2": "not forwarded", "z": "not forwarded"} {
		err := Allowed(rules, http.MethodGet, suffix)
		switch {
		case want == "" && err != nil, want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", suffix, err, want)
		}
		if pe, ok := err.(*Error); err != nil && (!ok || pe.Status != http.StatusForbidden) {
			t.Errorf("%q: %v is not a 403", suffix, err)
		}
	}
	if Allowed(nil, http.MethodGet, "a") == nil {
		t.Error("no rules must refuse")
	}
}

// FuzzAllowed: any suffix is judged without a panic, AllowAll allows it,
// and a deny-all rule never does.
func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"a", "a/b", "device/x", "%2e%2e", "[", "a//b", ""} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, suffix string) {
		if Allowed([]PathRule{AllowAll}, method, suffix) != nil {
			t.Fatalf("AllowAll refused %q", suffix)
		}
		if Allowed([]PathRule{{Pattern: "**", Deny: true}, AllowAll}, method, suffix) == nil {
			t.Fatalf("deny-all allowed %q", suffix)
		}
	})
}
