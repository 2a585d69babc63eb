package caddymodule

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// FuzzCheckQuery: whatever checkQuery accepts parses, and is valid UTF-8
// text without NUL in every name and value; whatever it refuses is a 400
// whose message is itself valid text (it is sent as JSON and logged).
func FuzzCheckQuery(f *testing.F) {
	for _, s := range []string{"", "a=b", "externalCustomerId=%ff", "x=%00", "%ff=1", "a=%c3%a9", "a=b;c=d", "a=%zz", "redirectionUrl=https%3A%2F%2Fx%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/api/start", nil)
		r.URL.RawQuery = raw
		err := checkQuery(r)
		if err == nil {
			q, perr := url.ParseQuery(raw)
			if perr != nil {
				t.Fatalf("accepted %q, which does not parse: %v", raw, perr)
			}
			for k, vs := range q {
				for _, v := range append(vs, k) {
					if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
						t.Fatalf("accepted %q with %q", raw, v)
					}
				}
			}
			return
		}
		pe, ok := err.(*provider.Error)
		if !ok || pe.Status != 400 || !utf8.ValidString(pe.Msg) || strings.IndexByte(pe.Msg, 0) >= 0 {
			t.Fatalf("refused %q with %#v", raw, err)
		}
	})
}

func TestHostMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "evil.example.com", false},
		{"*.example.com", "app.example.com", true},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"{env.HOST}", "{env.HOST}", false},
	} {
		if got := hostMatches(tc.pattern, tc.host); got != tc.want {
			t.Errorf("hostMatches(%q, %q) = %v", tc.pattern, tc.host, got)
		}
	}
	s := &siteHosts{levels: [][][]string{{{"app.example.com"}, {"*.example.org"}}, {nil}}}
	for host, want := range map[string]bool{"APP.example.com.": true, "x.example.org": true, "evil.example": false} {
		if s.allows(host) != want {
			t.Errorf("allows(%q) != %v", host, want)
		}
	}
	if (&siteHosts{catchAll: true}).allows("anything") {
		t.Fatal("a catch-all site allowed a host")
	}
}
