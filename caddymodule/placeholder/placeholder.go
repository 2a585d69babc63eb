// Package placeholder resolves the global placeholders of a configuration
// value when a module provisions, so secrets never sit in the JSON config.
//
// Besides Caddy's own ({env.NAME}, {file.PATH}, ...), it understands
// {env.NAME:default}: the value of NAME, or default when NAME is not set
// (set to the empty string, it stays empty), as Caddyfile's {$NAME:default}
// does at adapt time. The default is written into the JSON config, so it is
// for sandbox values, never for a real secret.
package placeholder

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// envDefault matches {env.NAME:default}; the default has no braces.
var envDefault = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*):([^{}]*)\}`)

// envRef matches every reference to an environment variable.
var envRef = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}`)

// Resolve replaces the known global placeholders in v and trims the result.
// Unknown placeholders are kept as written (a secret that happens to contain
// braces stays intact), and a substituted value is never scanned again.
func Resolve(v string) string {
	repl := caddy.NewReplacer()
	var sb strings.Builder
	last := 0
	for _, m := range envDefault.FindAllStringSubmatchIndex(v, -1) {
		if m[0] > 0 && v[m[0]-1] == '\\' {
			continue // an escaped brace: not a placeholder
		}
		sb.WriteString(repl.ReplaceKnown(v[last:m[0]], ""))
		name, def := v[m[2]:m[3]], v[m[4]:m[5]]
		if val, ok := os.LookupEnv(name); ok {
			sb.WriteString(val)
		} else {
			sb.WriteString(def)
		}
		last = m[1]
	}
	sb.WriteString(repl.ReplaceKnown(v[last:], ""))
	return strings.TrimSpace(sb.String())
}

// DefaultUsed reports whether resolving raw takes a written-in default
// ({env.NAME:default} with NAME unset). Such a value is in the JSON config
// and, in the shipped Caddyfiles, public: fit for the sandbox only.
func DefaultUsed(raw string) bool {
	for _, m := range envDefault.FindAllStringSubmatchIndex(raw, -1) {
		if m[0] > 0 && raw[m[0]-1] == '\\' {
			continue
		}
		if _, ok := os.LookupEnv(raw[m[2]:m[3]]); !ok && m[5] > m[4] {
			return true
		}
	}
	return false
}

// Why explains why raw resolved to an empty value, naming the environment
// variables it reads, e.g. "{env.API_KEY} is not set". It returns "" when
// raw names none (the value was simply not given).
func Why(raw string) string {
	var parts []string
	for _, m := range envRef.FindAllStringSubmatch(raw, -1) {
		name := m[1]
		val, ok := os.LookupEnv(name)
		switch {
		case !ok && strings.Contains(m[0], ":"):
			// a default was given, and it is empty
			parts = append(parts, fmt.Sprintf("%s: %s is not set and the default is empty", m[0], name))
		case !ok:
			parts = append(parts, fmt.Sprintf("%s is not set", m[0]))
		case strings.TrimSpace(val) == "":
			parts = append(parts, fmt.Sprintf("%s is set but empty", m[0]))
		}
	}
	return strings.Join(parts, "; ")
}

// Missing collects the required values that resolved empty, so that a
// configuration reports all of them at once.
type Missing []string

// Check records field as missing when resolved is empty, with the reason
// read from raw (the value as configured).
func (m *Missing) Check(field, raw, resolved string) {
	if resolved != "" {
		return
	}
	if why := Why(raw); why != "" {
		*m = append(*m, field+" is required: "+why)
	} else {
		*m = append(*m, field+" is required")
	}
}

// Err is nil when nothing is missing.
func (m Missing) Err() error {
	if len(m) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(m, "; "))
}
