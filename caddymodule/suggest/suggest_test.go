package suggest

import (
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	idv := []string{"prefix", "session_ttl", "session_retention", "timeout", "webhook_auth", "incode", "regula", "focalx"}
	for _, c := range []struct{ word, want string }{
		{"sesion_ttl", "session_ttl"},
		{"session_tll", "session_ttl"},
		{"prefx", "prefix"},
		{"incdoe", "incode"},
		{"webhook_aut", "webhook_auth"},
		{"colour", ""},
		{"session", "session_retention"}, // a truncation: the first in order
		{"webhook", "webhook_auth"},
		{"", ""},
	} {
		if got := Closest(c.word, idv); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
	if got := Closest("api_kye", []string{"api_url", "api_key", "api_version"}); got != "api_key" {
		t.Errorf("api_kye: %q", got)
	}
}

func TestUnknown(t *testing.T) {
	msg := Unknown("idv", "sesion_ttl", []string{"session_ttl", "prefix"})
	if msg != `idv: unknown option "sesion_ttl": did you mean "session_ttl"?` {
		t.Errorf("got %q", msg)
	}
	msg = Unknown("incode", "colour", []string{"api_url", "api_key"})
	if !strings.Contains(msg, `"colour"`) || !strings.Contains(msg, "api_key, api_url") {
		t.Errorf("got %q", msg)
	}
}

func FuzzClosest(f *testing.F) {
	f.Add("sesion_ttl")
	f.Fuzz(func(t *testing.T, w string) {
		if c := Closest(w, []string{"session_ttl", "a"}); c != "" && c != "session_ttl" && c != "a" {
			t.Fatalf("suggested %q, not a valid option", c)
		}
	})
}
