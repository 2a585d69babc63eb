package provider

import (
	"strings"
	"testing"
)

func TestAPIBase(t *testing.T) {
	t.Setenv("IDV_TEST_API", "https://eu.example.com/v3.6/")
	for _, tc := range []struct{ raw, version, want string }{
		{"", "", "https://default.example.com"},
		{"https://api.example.com/", "", "https://api.example.com"},
		{"https://api.example.com/v1", "/v1", "https://api.example.com"},
		{"{env.IDV_TEST_API}", "/v3.6", "https://eu.example.com"},
	} {
		u, err := APIBase(tc.raw, "https://default.example.com", tc.version)
		if err != nil || u.String() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.raw, u, err, tc.want)
		}
	}
	if _, err := APIBase("ftp://x", "", ""); err == nil || !strings.Contains(err.Error(), "api_url") {
		t.Errorf("ftp: %v", err)
	}
}

func TestSecretsAndAccount(t *testing.T) {
	t.Setenv("IDV_TEST_HOOK", "h2")
	rot := ResolveSecrets([]string{"h1", "{env.IDV_TEST_UNSET_VAR}", "{env.IDV_TEST_HOOK}"})
	if len(rot) != 2 || string(rot[1]) != "h2" {
		t.Fatalf("ResolveSecrets: %q", rot)
	}
	if got := SecretList(rot, "key"); strings.Join(got, ",") != "key,h1,h2" {
		t.Fatalf("SecretList: %v", got)
	}
	a, b := AccountID("https://x", "label", "key-1", "lvl"), AccountID("https://x", "label", "key-2", "lvl")
	if a == b || strings.Contains(a, "key-1") || !strings.HasPrefix(a, "https://x|lvl|") {
		t.Fatalf("AccountID: %q %q", a, b)
	}
}
