// Package webhookauth authenticates provider webhook calls: a static header,
// HTTP basic, or OAuth2 client credentials (the methods Incode offers).
//
// OAuth2 bearer tokens are stateless: an expiry and an HMAC keyed with the
// client secret. Every instance with the same configuration accepts them, a
// restart does not invalidate them, and nothing needs storing.
package webhookauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/caddymodule/placeholder"
)

// Methods.
const (
	Header = "header"
	Basic  = "basic"
	OAuth2 = "oauth2"
	None   = "none"
)

// Errors; the handler maps ErrUnauthorized to 401.
var (
	ErrUnauthorized = errors.New("webhook credentials are missing or wrong")
)

// Config is the webhook_auth configuration.
type Config struct {
	// Method is header, basic, oauth2 or none.
	Method string `json:"method"`
	// Name and Value of the header for the header method.
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
	// Username and Password for basic.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// ClientID and ClientSecret for oauth2.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// TokenTTL is the lifetime of issued oauth2 tokens. Default: 1h.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`

	// resolved values ({env.*} replaced at provision)
	name, value, user, pass, id, secret string
	key                                 []byte
	now                                 func() time.Time
}

// Provision resolves placeholders and checks the fields of the method.
func (c *Config) Provision() error {
	// Only known placeholders are replaced: a secret with braces is kept.
	r := placeholder.Resolve
	c.name, c.value = r(c.Name), r(c.Value)
	c.user, c.pass = r(c.Username), r(c.Password)
	c.id, c.secret = r(c.ClientID), r(c.ClientSecret)
	if c.now == nil {
		c.now = time.Now
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = caddy.Duration(time.Hour)
	}
	switch c.Method {
	case Header:
		if c.name == "" || c.value == "" {
			return errors.New("header needs a header name and a non-empty value")
		}
	case Basic:
		if c.user == "" || c.pass == "" {
			return errors.New("basic needs a non-empty user and password")
		}
	case OAuth2:
		if c.id == "" || c.secret == "" {
			return errors.New("oauth2 needs a non-empty client_id and client_secret")
		}
		m := hmac.New(sha256.New, []byte(c.secret))
		m.Write([]byte("caddy-idv webhook oauth2\x00" + c.id))
		c.key = m.Sum(nil)
	case None:
	default:
		return fmt.Errorf("unknown method %q (header, basic, oauth2 or none)", c.Method)
	}
	return nil
}

// HeaderName is the resolved header name of the header method, else "".
func (c *Config) HeaderName() string {
	if c.Method != Header {
		return ""
	}
	return c.name
}

// Secrets returns the resolved secrets, for the log redactor.
func (c *Config) Secrets() []string { return []string{c.value, c.pass, c.secret} }

// DefaultSecret reports whether a credential of c comes from a written-in
// placeholder default ({env.NAME:default} with NAME unset): a public value.
func (c *Config) DefaultSecret() bool {
	for _, raw := range []string{c.Value, c.Password, c.ClientSecret} {
		if placeholder.DefaultUsed(raw) {
			return true
		}
	}
	return false
}

func equal(a, b string) bool {
	// Compare digests so neither the length nor the content leaks by timing.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// Check authenticates a webhook request.
func (c *Config) Check(r *http.Request) error {
	switch c.Method {
	case None:
		return nil
	case Header:
		if v := r.Header.Get(c.name); v != "" && equal(v, c.value) {
			return nil
		}
	case Basic:
		u, p, ok := r.BasicAuth()
		userOK, passOK := equal(u, c.user), equal(p, c.pass) // both compared, whatever the first says
		if ok && userOK && passOK {
			return nil
		}
	case OAuth2:
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && c.validToken(tok) {
			return nil
		}
	}
	return ErrUnauthorized
}

// IssueToken answers the client-credentials grant at the token URL. It
// returns an error suitable for the client (400 or 401).
func (c *Config) IssueToken(r *http.Request) (map[string]any, int, error) {
	if c.Method != OAuth2 {
		return nil, http.StatusNotFound, errors.New("webhook_auth oauth2 is not configured")
	}
	if err := r.ParseForm(); err != nil {
		return nil, http.StatusBadRequest, errors.New("malformed form body")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		return nil, http.StatusBadRequest, fmt.Errorf("grant_type must be client_credentials")
	}
	id, secret, ok := r.BasicAuth()
	if !ok { // RFC 6749 allows the credentials in the body too
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	idOK, secretOK := equal(id, c.id), equal(secret, c.secret)
	if !idOK || !secretOK {
		return nil, http.StatusUnauthorized, ErrUnauthorized
	}
	ttl := time.Duration(c.TokenTTL)
	return map[string]any{
		"access_token": c.mint(c.now().Add(ttl)),
		"token_type":   "Bearer",
		"expires_in":   int(ttl / time.Second),
	}, http.StatusOK, nil
}

func (c *Config) mint(exp time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(exp.Unix()))
	m := hmac.New(sha256.New, c.key)
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Config) validToken(tok string) bool {
	ps, ms, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	p, err1 := base64.RawURLEncoding.DecodeString(ps)
	mac, err2 := base64.RawURLEncoding.DecodeString(ms)
	if err1 != nil || err2 != nil || len(p) != 8 {
		return false
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(p)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return false
	}
	return c.now().Unix() < int64(binary.BigEndian.Uint64(p))
}
