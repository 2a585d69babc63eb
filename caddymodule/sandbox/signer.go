package sandbox

import (
	"crypto/rand"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints and checks the sandbox's JWTs (HS256 with a random key per
// sandbox state), so tokens have a real exp and can really expire.
type Signer struct {
	key []byte
	Now func() time.Time
}

// NewSigner returns a signer with a fresh random key.
func NewSigner() *Signer {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &Signer{key: k, Now: time.Now}
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
	return tok
}

// Verify checks a token's signature and expiry and returns its claims.
func (s *Signer) Verify(tok string) (jwt.MapClaims, error) {
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
