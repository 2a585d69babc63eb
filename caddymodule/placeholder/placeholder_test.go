package placeholder

import (
	"strings"
	"testing"
)

func TestResolveEnvDefault(t *testing.T) {
	t.Setenv("PH_SET", "real-key")
	t.Setenv("PH_EMPTY", "")
	t.Setenv("PH_BRACES", "{env.PH_SET}")
	for _, c := range []struct{ in, want string }{
		{"{env.PH_UNSET_X:sandbox-key}", "sandbox-key"},
		{"{env.PH_SET:sandbox-key}", "real-key"},
		{"{env.PH_EMPTY:sandbox-key}", ""}, // set to empty stays empty, as {$NAME:default}
		{"{env.PH_UNSET_X:}", ""},
		{"{env.PH_UNSET_X:http://127.0.0.1:8081}", "http://127.0.0.1:8081"},
		{"{env.PH_SET}", "real-key"},
		{"{env.PH_UNSET_X}", ""},
		{"a-{env.PH_SET}-{env.PH_UNSET_X:b}-c", "a-real-key-b-c"},
		{"{env.PH_BRACES:x}", "{env.PH_SET}"},  // a value is not scanned again
		{"{unknown.thing}", "{unknown.thing}"}, // unknown placeholders are kept
		{"plain", "plain"},
		{"  spaced  ", "spaced"},
	} {
		if got := Resolve(c.in); got != c.want {
			t.Errorf("Resolve(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMissingNamesEveryVariable(t *testing.T) {
	t.Setenv("PH_EMPTY", "")
	var m Missing
	m.Check("api_key", "{env.PH_UNSET_KEY}", "")
	m.Check("flow_id", "{env.PH_EMPTY:sandbox-flow}", "")
	m.Check("client_id", "", "")
	m.Check("api_url", "{env.PH_UNSET_URL:http://x}", "http://x")
	err := m.Err()
	if err == nil {
		t.Fatal("missing values were not reported")
	}
	for _, want := range []string{
		"api_key is required: {env.PH_UNSET_KEY} is not set",
		"flow_id is required: {env.PH_EMPTY:sandbox-flow} is set but empty",
		"client_id is required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "api_url") {
		t.Errorf("a value that resolved was reported: %q", err)
	}
	if (Missing{}).Err() != nil {
		t.Error("nothing missing, yet an error")
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("{env.PH_UNSET:def}")
	f.Add("\\{env.X:y}{env.")
	f.Fuzz(func(t *testing.T, s string) {
		_ = Resolve(s)
		_ = Why(s)
	})
}
