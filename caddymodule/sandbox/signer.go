package sandbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints and checks the sandbox's JWTs (HS256 with a random key per
// sandbox state), so tokens have a real exp and can really expire.
type Signer struct {
	key []byte
	Now func() time.Time

	// verified caches the claims of tokens whose signature checked out
	// (or that this signer minted), by token: checking a signature and
	// decoding the claims was the sandbox's largest cost per call, and a
	// token is checked twice per call or more. The claims are re-validated
	// against Now on every use, so expiry is exactly as without the cache.
	// The key never changes, so entries never go stale.
	mu       sync.RWMutex
	verified map[string]jwt.MapClaims
	// validator is jwt's claims check with Now (read at each call).
	validator *jwt.Validator
}

// maxVerified bounds the cache; when full it is emptied (tokens are then
// checked again, as without it).
const maxVerified = 4096

// NewSigner returns a signer with a fresh random key.
func NewSigner() *Signer {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	s := &Signer{key: k, Now: time.Now}
	s.validator = jwt.NewValidator(jwt.WithTimeFunc(func() time.Time { return s.Now() }), jwt.WithExpirationRequired())
	return s
}

// ErrTokenExpired is returned by Verify for a well-signed, expired token.
var ErrTokenExpired = errors.New("token expired")

// Mint returns a JWT with claims plus iat and exp = now+ttl.
func (s *Signer) Mint(claims jwt.MapClaims, ttl time.Duration) string {
	now := s.Now()
	c := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if decoded, ok := asDecoded(c); ok && tok != "" {
		s.remember(tok, decoded)
	}
	return tok
}

// asDecoded returns claims as parsing the minted token yields them, when
// that is certain: strings (valid UTF-8) and integers exact in a float64
// survive the JSON round trip as string and float64. Any other value: not
// ok, and the token is parsed on first use instead.
func asDecoded(c jwt.MapClaims) (jwt.MapClaims, bool) {
	out := make(jwt.MapClaims, len(c))
	for k, v := range c {
		switch v := v.(type) {
		case string:
			if !utf8.ValidString(v) {
				return nil, false
			}
			out[k] = v
		case int64:
			if v > 1<<53 || v < -(1<<53) {
				return nil, false
			}
			out[k] = float64(v)
		default:
			return nil, false
		}
		if !utf8.ValidString(k) {
			return nil, false
		}
	}
	return out, true
}

func (s *Signer) remember(tok string, claims jwt.MapClaims) {
	s.mu.Lock()
	if s.verified == nil {
		s.verified = make(map[string]jwt.MapClaims)
	} else if len(s.verified) >= maxVerified {
		clear(s.verified) // keeps its memory for the next ones
	}
	s.verified[tok] = claims
	s.mu.Unlock()
}

// parser checks signatures only: the claims are validated separately, so
// that a cached token's claims are validated exactly as a parsed one's.
var parser = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())

// Verify checks a token's signature and expiry and returns its claims (the
// caller's own copy).
func (s *Signer) Verify(tok string) (jwt.MapClaims, error) {
	s.mu.RLock()
	cached, ok := s.verified[tok]
	s.mu.RUnlock()
	if !ok {
		cached = jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(tok, cached, func(*jwt.Token) (any, error) { return s.key, nil }); err != nil {
			return nil, err // never cached
		}
		s.remember(tok, cached)
	}
	claims := maps.Clone(cached)
	// As jwt.ParseWithClaims with WithTimeFunc(s.Now) and
	// WithExpirationRequired validates, and wraps its error.
	err := s.validator.Validate(claims)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return claims, ErrTokenExpired
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
	}
	return claims, nil
}
