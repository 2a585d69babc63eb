package sandbox

import (
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fresh parses tok as Verify did before it cached anything.
func fresh(s *Signer, tok string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(s.Now), jwt.WithExpirationRequired())
	if errors.Is(err, jwt.ErrTokenExpired) {
		return claims, ErrTokenExpired
	}
	if err != nil {
		return nil, err
	}
	return claims, nil
}

func TestSignerCacheSameClaimsAsFreshVerify(t *testing.T) {
	s := NewSigner()
	for _, c := range []jwt.MapClaims{
		{"sub": "abc", "typ": "session"},
		{"sub": "<a&b>\u2028é", "n": int64(1) << 53},
		{"list": []string{"a"}, "n": 3, "f": 1.5}, // not cached by Mint
	} {
		tok := s.Mint(c, time.Hour)
		want, err := fresh(s, tok)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 { // Mint's entry, then hits
			got, err := s.Verify(tok)
			if err != nil || !maps.EqualFunc(got, want, func(a, b any) bool { return jsonEq(t, a, b) }) {
				t.Fatalf("%v: Verify #%d = %#v %v, want %#v", c, i, got, err, want)
			}
			got["sub"] = "mutated" // the caller's own copy
		}
		s.mu.Lock()
		clear(s.verified) // a token the signer did not mint from this cache
		s.mu.Unlock()
		for range 2 {
			if got, err := s.Verify(tok); err != nil || !maps.EqualFunc(got, want, func(a, b any) bool { return jsonEq(t, a, b) }) {
				t.Fatalf("%v: parsed Verify = %#v %v, want %#v", c, got, err, want)
			}
		}
	}
}

// jsonEq compares claim values as decoded JSON (float64, string, []any).
func jsonEq(t *testing.T, a, b any) bool {
	t.Helper()
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		return ok && len(a) == len(b) && (len(a) == 0 || a[0] == b[0])
	default:
		return a == b
	}
}

func TestSignerCacheHonoursExpiryAndKey(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := NewSigner()
	s.Now = func() time.Time { return now }
	tok := s.Mint(jwt.MapClaims{"sub": "x"}, time.Minute)
	if _, err := s.Verify(tok); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute) // exp == now: expired, as jwt decides
	if c, err := s.Verify(tok); !errors.Is(err, ErrTokenExpired) || c["sub"] != "x" {
		t.Fatalf("cached token at its exp: %v %v, want ErrTokenExpired with its claims", c, err)
	}
	if c, err := fresh(s, tok); !errors.Is(err, ErrTokenExpired) || c["sub"] != "x" {
		t.Fatalf("fresh verify disagrees: %v %v", c, err)
	}
	now = now.Add(-time.Second) // a clock set back: valid again, as before
	if _, err := s.Verify(tok); err != nil {
		t.Fatal(err)
	}

	// A token of another signer (another key) is refused and never cached,
	// before and after this signer cached its own tokens.
	other := NewSigner()
	other.Now = s.Now
	forged := other.Mint(jwt.MapClaims{"sub": "x"}, time.Hour)
	for range 2 {
		if c, err := s.Verify(forged); err == nil || c != nil {
			t.Fatalf("another key's token: %v %v", c, err)
		}
	}
	// Nor this signer's claims under another key's signature, nor a
	// tampered token.
	own, theirs := strings.Split(tok, "."), strings.Split(forged, ".")
	resigned := own[0] + "." + own[1] + "." + theirs[2]
	for _, bad := range []string{forged, resigned, tok + "x", tok[:len(tok)-2]} {
		if _, err := s.Verify(bad); err == nil {
			t.Fatalf("%q verified", bad)
		}
		s.mu.RLock()
		_, cached := s.verified[bad]
		s.mu.RUnlock()
		if cached {
			t.Fatalf("%q was cached", bad)
		}
	}
}

func TestSignerCacheBoundedAndConcurrent(t *testing.T) {
	s := NewSigner()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxVerified {
				tok := s.Mint(jwt.MapClaims{"g": string(rune('a' + g))}, time.Hour)
				if c, err := s.Verify(tok); err != nil || c["g"] != string(rune('a'+g)) {
					t.Errorf("%d: %v %v", i, c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.mu.RLock()
	n := len(s.verified)
	s.mu.RUnlock()
	if n > maxVerified {
		t.Fatalf("%d cached tokens, bound %d", n, maxVerified)
	}
}

func BenchmarkSignerVerify(b *testing.B) {
	s := NewSigner()
	tok := s.Mint(jwt.MapClaims{"sub": "0123456789abcdef01234567", "typ": "session"}, time.Hour)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parsed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fresh(s, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Tokens the cache must never let through, checked twice each (the second
// time would be a cache hit if the first had been cached): an unsigned
// token (alg none), no expiry, an expiry that is not a number, and claims
// minted with a future nbf.
func TestSignerRejectsUnsignedAndMalformedClaims(t *testing.T) {
	s := NewSigner()
	now := time.Unix(1_800_000_000, 0)
	s.Now = func() time.Time { return now }
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"}).SignedString(s.key)
	strExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": "later"}).SignedString(s.key)
	bad := map[string]string{
		"alg none":                 none,
		"no exp":                   noExp,
		"exp a string":             strExp,
		"minted exp a string":      s.Mint(jwt.MapClaims{"exp": "9999999999"}, time.Minute),
		"minted nbf in the future": s.Mint(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}, time.Minute),
	}
	for name, tok := range bad {
		for range 2 {
			if _, err := s.Verify(tok); err == nil {
				t.Fatalf("%s: accepted", name)
			}
		}
	}
}
