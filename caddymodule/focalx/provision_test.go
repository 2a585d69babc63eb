package focalx_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validate adapts a Caddyfile and provisions it without serving.
func validate(t *testing.T, caddyfile string) error {
	t.Helper()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("FOCALX_TEST_SECRET", "from-the-environment")
	good := map[string]string{"api_url": "https://api.focalx.example", "client_key": "k", "client_secret": "{env.FOCALX_TEST_SECRET}",
		"encryption_key": hexKey, "pub_key": "p"}
	for _, tc := range []struct {
		name string
		over map[string]string
		want string // "" for a valid configuration
	}{
		{"valid", nil, ""},
		{"gcm with a base64 key", map[string]string{"cipher": "gcm", "encryption_key": b64Key}, ""},
		{"no api_url", map[string]string{"api_url": ""}, "focalx: api_url is required"},
		{"api_url not http", map[string]string{"api_url": "ftp://x"}, "api_url must be an http or https URL"},
		{"no client_key", map[string]string{"client_key": ""}, "focalx: client_key is required"},
		{"client_secret from an unset variable", map[string]string{"client_secret": "{env.FOCALX_TEST_UNSET}"}, "focalx: client_secret is required"},
		{"no encryption_key", map[string]string{"encryption_key": ""}, "focalx: encryption_key is required"},
		{"no pub_key", map[string]string{"pub_key": ""}, "focalx: pub_key is required"},
		{"16-byte key", map[string]string{"encryption_key": "q83vASNFZ4mrze8BI0VniQ=="}, "encryption_key must decode to 32 bytes"},
		{"text key", map[string]string{"encryption_key": "a-31-character-text-key-is-bad!"}, "encryption_key must be 32 bytes"},
		{"unknown cipher", map[string]string{"cipher": "ctr"}, "cipher must be cbc or gcm"},
		{"raw 32-character key", map[string]string{"encryption_key": "a-32-character-text-key-is-fine!"}, ""},
		{"user_email_trusted with a value", map[string]string{"user_email_trusted": "yes"}, "user_email_trusted takes no value"},
		{"report_key", map[string]string{"report_key": "{env.FOCALX_TEST_SECRET}"}, ""},
		{"short report_key", map[string]string{"report_key": "short-key"}, "report_key must be at least 16 characters"},
		{"unknown option", map[string]string{"secret": "x"}, `unknown option "secret"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			over := map[string]string{}
			for k, v := range good {
				over[k] = v
			}
			for k, v := range tc.over {
				over[k] = v
			}
			src := ":0 {\n\tidv {\n\t\tfocalx {\n" + block("\t\t\t", over) + "\t\t}\n\t}\n}\n"
			err := validate(t, src)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid configuration refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), hexKey):
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
	t.Run("sandbox", func(t *testing.T) {
		for over, want := range map[string]string{
			"":                           "",
			"token_ttl 0s":               "token_ttl must be a positive duration",
			"expiry_format iso":          "expiry_format must be timedelta or invalid",
			"cipher ecb":                 "cipher must be cbc or gcm",
			"encryption_key 0011":        "encryption_key must",
			"report_url ftp://x":         "report_url must be an http or https URL",
			"pub_key {env.FOCALX_UNSET}": "client_key, client_secret, encryption_key and pub_key are required",
		} {
			src := ":0 {\n\tidv_sandbox {\n\t\tfocalx {\n" + block("\t\t\t", nil) + "\t\t\t" + over + "\n\t\t}\n\t}\n}\n"
			err := validate(t, src)
			if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
				t.Errorf("sandbox with %q: %v, want %q", over, err, want)
			}
		}
	})
}
