package provider

import (
	"testing"
	"time"
)

func TestJWTExpiry(t *testing.T) {
	if exp, ok := JWTExpiry("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTYyMzA2OTF9.sig"); !ok || exp.Unix() != 1796230691 {
		t.Fatalf("exp %v %v", exp, ok)
	}
	for _, tok := range []string{"", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiJ4In0.sig", "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOi0xfQ.sig"} {
		if _, ok := JWTExpiry(tok); ok {
			t.Errorf("%q: an expiry", tok)
		}
	}
}

// FuzzJWTExpiry: any token either yields a plausible expiry or none, never
// a panic.
func FuzzJWTExpiry(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3OTYyMzA2OTF9.sig")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if exp, ok := JWTExpiry(tok); ok && (exp.Before(time.Unix(0, 0)) || exp.Year() > 5200) {
			t.Fatalf("implausible expiry %v", exp)
		}
	})
}
