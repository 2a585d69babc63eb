package focalx

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/sandbox"
)

// Credential outcomes recorded with each GetToken call.
const (
	CredOK              = "ok"
	CredBadClientKey    = "bad_client_key"
	CredBadClientSecret = "bad_client_secret"
	CredBadPubKey       = "bad_pub_key"
	CredUndecryptable   = "undecryptable"
)

// Emulator emulates Focalx's GetToken API (module ID idv.sandbox.focalx).
// It opens the auth header with the same envelope code as the provider and
// answers with the documented statuses: 401 for a wrong client key (in the
// query or in the header) or a header it cannot decrypt, 402 for a wrong
// client secret, 403 for a wrong or missing pubKey, 400 for a user_hash that
// is not an MD5 hex digest. Its tokens are JWTs with a real exp and the
// user's hash, which GET /__focalx/whoami reads back. Errors have the body
// Focalx documents for its APIs, {"error": "<text>"} (ErrorBody).
//
// It also creates inspections (POST /Create-Inspection, and the
// /createinspection/ of the documentation's curl example, with a token as
// Bearer) and, when one is finished (POST /__focalx/finish?inspectionId=,
// the sandbox's stand-in for the user completing it in the plugin), pushes
// its DamageReport as Focalx does: POST <report_url>?x-api-key=<report_key>,
// retried until a 2xx.
type Emulator struct {
	// ClientKey, ClientSecret, EncryptionKey, PubKey and Cipher are what
	// the emulated account accepts, as in the provider's configuration.
	ClientKey     string `json:"client_key,omitempty"`
	ClientSecret  string `json:"client_secret,omitempty"`
	EncryptionKey string `json:"encryption_key,omitempty"`
	PubKey        string `json:"pub_key,omitempty"`
	Cipher        string `json:"cipher,omitempty"`
	// TokenTTL is the tokens' lifetime. Default: 2h, as documented.
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`
	// ExpiryFormat is how expiry_time is written: "timedelta" (default,
	// e.g. "2:00:00" or "5 days, 0:00:00") or "invalid", a string no
	// parser understands, to exercise the provider's fallback.
	ExpiryFormat string `json:"expiry_format,omitempty"`
	// ReportURL receives the damage reports (the sidecar's
	// <prefix>/damage-report); empty: none are sent. ReportKey is sent in
	// its x-api-key query parameter.
	ReportURL string `json:"report_url,omitempty"`
	ReportKey string `json:"report_key,omitempty"`

	reports sandbox.Webhooks
	st      *inspections
	key     []byte
	mode    Mode
	host    *sandbox.Host
	kit     *sandbox.Kit
}

// CaddyModule returns the Caddy module information.
func (Emulator) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.sandbox.focalx", New: func() caddy.Module { return new(Emulator) }}
}

// UnmarshalCaddyfile parses the sandbox's focalx block. Syntax:
//
//	focalx {
//		client_key     <key>
//		client_secret  <secret>
//		encryption_key <key>            # 64 hex characters or base64 of 32 bytes
//		pub_key        <key>
//		cipher         cbc|gcm          # default cbc
//		token_ttl      <duration>       # default 2h
//		expiry_format  timedelta|invalid   # default timedelta
//		report_url     <url>            # where damage reports are pushed
//		report_key     <key>            # their x-api-key
//	}
func (e *Emulator) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return sandbox.ParseBlock(d, "idv_sandbox focalx", map[string]provider.Option{
		"client_key": provider.String(&e.ClientKey), "client_secret": provider.String(&e.ClientSecret),
		"encryption_key": provider.String(&e.EncryptionKey), "pub_key": provider.String(&e.PubKey),
		"cipher": provider.String(&e.Cipher), "expiry_format": provider.String(&e.ExpiryFormat),
		"report_url": provider.String(&e.ReportURL), "report_key": provider.String(&e.ReportKey),
		"token_ttl": {Set: func(a []string) error {
			dur, err := caddy.ParseDuration(a[0])
			if err != nil || dur <= 0 {
				return fmt.Errorf("token_ttl must be a positive duration, got %q", a[0])
			}
			e.TokenTTL = caddy.Duration(dur)
			return nil
		}},
	})
}

// ProvisionSandbox implements sandbox.Emulator.
func (e *Emulator) ProvisionSandbox(ctx caddy.Context, h *sandbox.Host) error {
	sandbox.Resolve(true, &e.ClientKey, &e.ClientSecret, &e.EncryptionKey, &e.PubKey, &e.Cipher, &e.ExpiryFormat, &e.ReportURL, &e.ReportKey)
	if e.ClientKey == "" || e.ClientSecret == "" || e.EncryptionKey == "" || e.PubKey == "" {
		return errors.New("client_key, client_secret, encryption_key and pub_key are required")
	}
	var err error
	if e.key, err = ParseKey(e.EncryptionKey); err != nil {
		return err
	}
	if e.mode, err = ParseMode(e.Cipher); err != nil {
		return err
	}
	switch e.ExpiryFormat {
	case "":
		e.ExpiryFormat = "timedelta"
	case "timedelta", "invalid":
	default:
		return fmt.Errorf("expiry_format must be timedelta or invalid, got %q", e.ExpiryFormat)
	}
	if e.TokenTTL < 0 {
		return errors.New("token_ttl must be positive")
	}
	if e.TokenTTL == 0 {
		e.TokenTTL = caddy.Duration(DefaultLifetime)
	}
	if e.ReportURL != "" {
		u, err := url.Parse(e.ReportURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("report_url must be an http or https URL")
		}
		q := u.Query()
		q.Set("x-api-key", e.ReportKey)
		u.RawQuery = q.Encode()
		e.reports = sandbox.Webhooks{URL: u.String()}
	}
	e.host = h
	e.st = h.Shared("focalx-inspections", func() any { return &inspections{m: map[string]*inspection{}} }).(*inspections)
	post := []string{http.MethodPost}
	e.kit = &sandbox.Kit{Provider: "focalx", Host: h, Shape: ErrorBody, MethodMessage: "method not allowed", Caller: e.caller,
		Routes: []sandbox.KitRoute{
			{Pattern: "/__focalx/whoami", Handle: e.whoami}, // sandbox-only: no Op
			{Methods: post, Pattern: "/Create-Inspection", Op: "Create-Inspection", Handle: e.createInspection},
			{Methods: post, Pattern: "/createinspection/", Op: "Create-Inspection", Handle: e.createInspection},
			{Methods: post, Pattern: "/createinspection", Op: "Create-Inspection", Handle: e.createInspection},
			{Methods: post, Pattern: "/__focalx/finish", Handle: e.finish},
			// Any method: the call is counted before its method is checked.
			{Pattern: "/GetToken", Op: "GetToken", Handle: e.getToken},
			{Pattern: "/", Op: "GetToken", Handle: e.getToken},
		}}
	return nil
}

// ServeSandbox implements sandbox.Emulator. GetToken is served at
// /GetToken, as documented, and at / when the request carries clientKey or
// auth, as in the documentation's curl example; a bare / is left to others.
func (e *Emulator) ServeSandbox(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/" && !r.URL.Query().Has("clientKey") && r.Header.Get("auth") == "" {
		return false
	}
	return e.kit.Serve(w, r)
}

// caller is what the records say of a call: GetToken's credential outcome,
// a Bearer token's kind.
func (e *Emulator) caller(r *http.Request, rt *sandbox.KitRoute) sandbox.Caller {
	if rt.Op == "GetToken" {
		_, cred, _, _ := e.check(r)
		return sandbox.Caller{Cred: cred, APIKey: r.Header.Get("auth") != ""}
	}
	_, cred := e.token(r)
	return sandbox.Caller{Cred: cred}
}

// ErrorBody is Focalx's error shape: the 400 answers of its documented
// APIs are {"error": "<text>"} (create_inspection.rst,
// submit_damage_report.rst); GetToken's error bodies are not published and
// are assumed to be the same.
func ErrorBody(_ int, msg, _ string) any { return map[string]string{"error": msg} }

func apiErr(w http.ResponseWriter, r *http.Request, status int, msg string) {
	sandbox.WriteJSON(w, status, ErrorBody(status, msg, r.URL.Path))
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// check classifies a GetToken call: the credential outcome, and the error
// status and message (0 when the credentials are good).
func (e *Emulator) check(r *http.Request) (userHash, cred string, status int, msg string) {
	if !same(r.URL.Query().Get("clientKey"), e.ClientKey) {
		return "", CredBadClientKey, http.StatusUnauthorized, "invalid client key"
	}
	plain, err := Open(e.mode, e.key, r.Header.Get("auth"))
	var in authPayload
	if err != nil || json.Unmarshal(plain, &in) != nil {
		return "", CredUndecryptable, http.StatusUnauthorized, "invalid client key: the auth header cannot be decrypted"
	}
	switch {
	case !same(in.ClientKey, e.ClientKey):
		return "", CredBadClientKey, http.StatusUnauthorized, "invalid client key"
	case !same(in.ClientSecret, e.ClientSecret):
		return "", CredBadClientSecret, http.StatusPaymentRequired, "invalid client secret"
	case !same(r.Header.Get("pubKey"), e.PubKey):
		return "", CredBadPubKey, http.StatusForbidden, "invalid public key"
	}
	if b, err := hex.DecodeString(in.UserHash); err != nil || len(b) != 16 {
		return "", CredOK, http.StatusBadRequest, "user_hash must be the MD5 hex digest of the user's e-mail"
	}
	return strings.ToLower(in.UserHash), CredOK, 0, ""
}

func (e *Emulator) getToken(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	hash, _, status, msg := e.check(r)
	// GET as documented; POST too, which is what the documentation's curl
	// example (with --data '') really sends.
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		apiErr(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if status != 0 {
		apiErr(w, r, status, msg)
		return
	}
	ttl := time.Duration(e.TokenTTL)
	tok := e.host.Signer.Mint(jwt.MapClaims{"typ": "focalx", "sub": hash, "user_hash": hash}, ttl)
	expiry := FormatTimedelta(ttl)
	if e.ExpiryFormat == "invalid" {
		expiry = "in about " + expiry
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]string{"token": tok, "expiry_time": expiry})
}

// whoami answers the user_hash of a Bearer token the emulator issued, so
// tests can prove a token works and belongs to the right user.
func (e *Emulator) whoami(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	claims, cred := e.token(r)
	e.host.Calls.Record("focalx", "whoami", cred)
	if e.bearerFailed(w, r, cred) {
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, map[string]any{"user_hash": claims["user_hash"], "exp": claims["exp"]})
}

// token classifies a call's Bearer token: "token" (one the emulator issued,
// with its claims), "expired_token" or "invalid_token".
func (e *Emulator) token(r *http.Request) (map[string]any, string) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims, err := e.host.Signer.Verify(tok)
	hash, _ := claims["user_hash"].(string)
	switch {
	case errors.Is(err, sandbox.ErrTokenExpired):
		return nil, "expired_token"
	case err != nil || claims["typ"] != "focalx" || hash == "":
		return nil, "invalid_token"
	}
	return claims, "token"
}

// bearerFailed answers 401 unless cred is a good token.
func (e *Emulator) bearerFailed(w http.ResponseWriter, r *http.Request, cred string) bool {
	switch cred {
	case "expired_token":
		apiErr(w, r, http.StatusUnauthorized, "token expired")
	case "invalid_token":
		apiErr(w, r, http.StatusUnauthorized, "missing or invalid token")
	default:
		return false
	}
	return true
}

// Interface guards
var (
	_ sandbox.Emulator      = (*Emulator)(nil)
	_ caddyfile.Unmarshaler = (*Emulator)(nil)
)
