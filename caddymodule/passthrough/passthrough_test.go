package passthrough

import (
	"net/url"
	"strings"
	"testing"
)

func TestCleanAccepts(t *testing.T) {
	for _, p := range []string{"get/score", "add/front-id/v2", "a/b-c_d.e~f", "x%20y", "id@v2", "a.b/c..d", "%21x", "%2A"} {
		if got, err := Clean(p); err != nil || got != p {
			t.Errorf("Clean(%q) = %q, %v; want it unchanged", p, got, err)
		}
	}
}

// hostile are path suffixes an attacker may send below a passthrough route.
var hostile = []string{
	"", "/", "//evil.example/x", "/evil.example", "..", ".", "../", "../admin", "a/../../x", "a/./b", "a//b", "a/",
	"%2e%2e/x", "%2E%2E/x", ".%2e/x", "%2e./x", "a/%2e%2e/%2e%2e/x", "a%2fb", "a%2Fb", "..%2fadmin", "a%5cb", "a%5C..%5Cb",
	"a\\b", "..\\..\\x", "a%00b", "a%0d%0ab", "a\r\nb", "a\nb", "a#frag", "a?x=1", "a b", "a%25%32%65", "a%252e",
	"a%", "a%2", "a%zz", "..;/x", "a/..;/b", "a;b", "a%3bb", "%3B..", "a%23b", "a%3Fb", "\u00e9", "a%c0%ae%c0%ae/x", "a%ff", "@evil.example/x",
	// Encoded unreserved characters: the provider decodes them, so a check
	// on the escaped path would see another path than the provider's.
	"session%73", "%73essions", "Session%53", "%41", "a%2db", "a%5fb", "a%7eb", "a%2Eb", "v%31/x", "x/%61/y", strings.Repeat("a/", MaxPathLen),
}

func TestCleanRefuses(t *testing.T) {
	for _, p := range hostile {
		if p == "@evil.example/x" {
			continue // a harmless path segment: checked by TestForwardStaysInRoot
		}
		if got, err := Clean(p); err == nil {
			t.Errorf("Clean(%q) = %q, want refused", p, got)
		}
	}
}

func TestWithin(t *testing.T) {
	if !Within("/0/omni/", "/0/omni/get/score") {
		t.Fatal("a plain path is within the root")
	}
	for _, p := range []string{"/0/omni/../x", "/0/omni//x", "/0/omnix", "/0/omni/%2e%2e/x", "/1/omni/x", "/0/omni/a\\b"} {
		if Within("/0/omni/", p) {
			t.Errorf("Within(%q) = true", p)
		}
	}
}

// FuzzClean checks the property that matters: whatever is accepted, once
// appended to the root and decoded the way any server decodes it, stays
// under the root and is what was accepted.
func FuzzClean(f *testing.F) {
	for _, p := range append(hostile, "get/score", "add/front-id/v2", "a%20b") {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := Clean(p)
		if err != nil {
			return
		}
		if got != p {
			t.Fatalf("Clean changed %q to %q", p, got)
		}
		full := "/0/omni/" + got
		if !Within("/0/omni/", full) {
			t.Fatalf("accepted %q escapes the root", p)
		}
		u, err := url.Parse("https://api.example" + full)
		if err != nil || u.Host != "api.example" || !strings.HasPrefix(u.Path, "/0/omni/") || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q parses as host %q path %q query %q", p, u.Host, u.Path, u.RawQuery)
		}
		for _, seg := range strings.Split(strings.TrimPrefix(u.Path, "/0/omni/"), "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q has segment %q after decoding", p, seg)
			}
		}
		// A check on the accepted (escaped) path sees the path the provider
		// decodes: a decoded path made of plain characters was accepted
		// only in that plain form.
		dec, err := url.PathUnescape(got)
		if err != nil {
			t.Fatalf("accepted %q does not decode: %v", p, err)
		}
		plain := true
		for i := 0; i < len(dec); i++ {
			plain = plain && (Unreserved(dec[i]) || dec[i] == '/')
		}
		if plain && dec != got {
			t.Fatalf("accepted %q, which decodes to the plain path %q", p, dec)
		}
		for i := 0; i+2 < len(got); i++ {
			if got[i] == '%' {
				if v, err := url.PathUnescape(got[i : i+3]); err == nil && len(v) == 1 && Unreserved(v[0]) {
					t.Fatalf("accepted %q with an encoded unreserved %q", p, v)
				}
			}
		}
	})
}
