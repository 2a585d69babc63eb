package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// ResolveSecrets resolves each configured secret (a repeatable option, for
// rotation) and keeps the non-empty ones.
func ResolveSecrets(values []string) [][]byte {
	var out [][]byte
	for _, s := range values {
		if v := Resolve(s); v != "" {
			out = append(out, []byte(v))
		}
	}
	return out
}

// SecretList is what Provider.Secrets returns for single secrets plus a
// list of rotated ones.
func SecretList(rotated [][]byte, single ...string) []string {
	out := slices.Clone(single)
	for _, s := range rotated {
		out = append(out, string(s))
	}
	return out
}

// APIBase resolves and checks an api_url option: def when it is empty, an
// http(s) URL with a host, and without a trailing slash or the API version
// prefix the calls add themselves (a base given with it is accepted).
func APIBase(raw, def, version string) (*url.URL, error) {
	api := Resolve(raw)
	if api == "" {
		api = def
	}
	base, err := ParseBaseURL("api_url", api)
	if err != nil {
		return nil, err
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	if version != "" {
		base.Path = strings.TrimSuffix(base.Path, version)
	}
	base.RawPath = ""
	return base, nil
}

// AccountID is an Identity built from the base URL, readable parts and a
// digest of the credential that names the account (never the credential).
func AccountID(base, label, credential string, parts ...string) string {
	sum := sha256.Sum256([]byte(label + "\x00" + credential))
	return strings.Join(append(append([]string{base}, parts...), hex.EncodeToString(sum[:8])), "|")
}
