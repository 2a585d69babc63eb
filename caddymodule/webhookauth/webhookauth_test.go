package webhookauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func provisioned(t *testing.T, c Config) *Config {
	t.Helper()
	if err := c.Provision(); err != nil {
		t.Fatal(err)
	}
	return &c
}

func req(h ...string) *http.Request {
	r := httptest.NewRequest("POST", "/api/webhook", nil)
	for i := 0; i+1 < len(h); i += 2 {
		r.Header.Set(h[i], h[i+1])
	}
	return r
}

func TestHeader(t *testing.T) {
	c := provisioned(t, Config{Method: Header, Name: "X-Webhook-Secret", Value: "s3cret"})
	if c.Check(req("X-Webhook-Secret", "s3cret")) != nil {
		t.Fatal("right secret refused")
	}
	for _, r := range []*http.Request{req(), req("X-Webhook-Secret", "s3cre"), req("X-Webhook-Secret", "s3cret "), req("X-Other", "s3cret")} {
		if c.Check(r) == nil {
			t.Fatal("wrong or missing secret accepted")
		}
	}
}

func TestBasic(t *testing.T) {
	c := provisioned(t, Config{Method: Basic, Username: "incode", Password: "pw"})
	ok := req()
	ok.SetBasicAuth("incode", "pw")
	if c.Check(ok) != nil {
		t.Fatal("right credentials refused")
	}
	for _, up := range [][2]string{{"incode", "pW"}, {"other", "pw"}, {"", ""}} {
		r := req()
		r.SetBasicAuth(up[0], up[1])
		if c.Check(r) == nil {
			t.Fatalf("wrong credentials %v accepted", up)
		}
	}
	if c.Check(req()) == nil {
		t.Fatal("missing credentials accepted")
	}
}

func tokenRequest(id, secret, grant string) *http.Request {
	r := httptest.NewRequest("POST", "/api/webhook/token", strings.NewReader(url.Values{"grant_type": {grant}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(id, secret)
	return r
}

func TestOAuth2(t *testing.T) {
	c := provisioned(t, Config{Method: OAuth2, ClientID: "incode", ClientSecret: "cs", TokenTTL: 0})
	now := time.Now()
	c.now = func() time.Time { return now }
	body, status, err := c.IssueToken(tokenRequest("incode", "cs", "client_credentials"))
	if err != nil || status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != 3600 {
		t.Fatalf("token: %v %d %v", body, status, err)
	}
	tok := body["access_token"].(string)
	if c.Check(req("Authorization", "Bearer "+tok)) != nil {
		t.Fatal("issued token refused")
	}
	// Another instance with the same configuration accepts it (a cluster).
	other := provisioned(t, Config{Method: OAuth2, ClientID: "incode", ClientSecret: "cs"})
	if other.Check(req("Authorization", "Bearer "+tok)) != nil {
		t.Fatal("a second instance refused the token")
	}
	// A different secret does not.
	rotated := provisioned(t, Config{Method: OAuth2, ClientID: "incode", ClientSecret: "cs2"})
	if rotated.Check(req("Authorization", "Bearer "+tok)) == nil {
		t.Fatal("a token survived a secret rotation")
	}
	for _, bad := range []string{"", "Bearer", "Bearer " + tok + "x", "Bearer x." + strings.SplitN(tok, ".", 2)[1], "Basic " + tok, "bearer " + tok} {
		if c.Check(req("Authorization", bad)) == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	now = now.Add(2 * time.Hour)
	if c.Check(req("Authorization", "Bearer "+tok)) == nil {
		t.Fatal("an expired token was accepted")
	}
	for _, r := range []*http.Request{tokenRequest("incode", "wrong", "client_credentials"), tokenRequest("x", "cs", "client_credentials")} {
		if _, status, err := c.IssueToken(r); err == nil || status != 401 {
			t.Fatalf("wrong client credentials: %d %v", status, err)
		}
	}
	if _, status, _ := c.IssueToken(tokenRequest("incode", "cs", "password")); status != 400 {
		t.Fatalf("wrong grant: %d", status)
	}
}

func TestProvisionNeedsFields(t *testing.T) {
	for _, c := range []Config{{Method: Header, Name: "X"}, {Method: Basic, Username: "u"}, {Method: OAuth2, ClientID: "i"}, {Method: "hmac"}} {
		if err := c.Provision(); err == nil {
			t.Errorf("%+v provisioned", c)
		}
	}
	braces := provisioned(t, Config{Method: Header, Name: "X-S", Value: "s{ec}ret"})
	if braces.Check(req("X-S", "s{ec}ret")) != nil {
		t.Fatal("a secret with braces was altered by placeholder replacement")
	}
	t.Setenv("HOOK_SECRET", "from-env")
	c := provisioned(t, Config{Method: Header, Name: "X-S", Value: "{env.HOOK_SECRET}"})
	if c.Check(req("X-S", "from-env")) != nil {
		t.Fatal("{env.*} not resolved at provision")
	}
}

// TestHeaderName: the core hides the configured header (resolved) from
// access logs; other methods have none.
func TestHeaderName(t *testing.T) {
	t.Setenv("IDV_TEST_HOOK_HEADER", "X-Custom-Hook")
	c := &Config{Method: Header, Name: "{env.IDV_TEST_HOOK_HEADER}", Value: "v"}
	if err := c.Provision(); err != nil {
		t.Fatal(err)
	}
	if c.HeaderName() != "X-Custom-Hook" {
		t.Fatalf("HeaderName() = %q", c.HeaderName())
	}
	b := &Config{Method: Basic, Username: "u", Password: "p"}
	if err := b.Provision(); err != nil || b.HeaderName() != "" {
		t.Fatalf("basic: %q %v", b.HeaderName(), err)
	}
}
