package caddyidv_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-idv/caddy-idv"
)

// shipped lists every Caddyfile in the repository.
func shipped(t *testing.T) []string {
	files := []string{"Caddyfile"}
	for _, pattern := range []string{"examples/*/Caddyfile", "examples/*/*.Caddyfile"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 7 {
		t.Fatalf("found only %v", files)
	}
	return files
}

// TestShippedCaddyfilesAdaptAndFilterCredentials: every Caddyfile the
// project ships adapts, has no formatting warnings, and every one of its
// servers writes access logs only through a filter that deletes the
// providers' credential headers (Caddy itself redacts only Cookie,
// Set-Cookie, Authorization and Proxy-Authorization).
func TestShippedCaddyfilesAdaptAndFilterCredentials(t *testing.T) {
	t.Setenv("LAN_IP", "192.0.2.10")
	t.Setenv("NODE_PORT", "9091")
	must := []string{"X-Api-Key", "X-Incode-Hardware-Id", "X-Token", "Auth"}
	for _, f := range shipped(t) {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": f})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w)
			}
			var cfg struct {
				Logging struct {
					Logs map[string]struct {
						Include []string `json:"include"`
						Encoder struct {
							Format string                     `json:"format"`
							Fields map[string]json.RawMessage `json:"fields"`
						} `json:"encoder"`
					} `json:"logs"`
				} `json:"logging"`
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Logs *json.RawMessage `json:"logs"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			for name, srv := range cfg.Apps.HTTP.Servers {
				if srv.Logs == nil {
					t.Errorf("server %s has no access log (and so no filter)", name)
				}
			}
			access := 0
			for name, l := range cfg.Logging.Logs {
				isAccess := false
				for _, inc := range l.Include {
					isAccess = isAccess || strings.HasPrefix(inc, "http.log.access")
				}
				if !isAccess {
					continue
				}
				access++
				if l.Encoder.Format != "filter" {
					t.Errorf("access log %s is not filtered", name)
				}
				for _, h := range must {
					if _, ok := l.Encoder.Fields["request>headers>"+h]; !ok {
						t.Errorf("access log %s does not delete %s", name, h)
					}
				}
			}
			if access == 0 {
				t.Error("no access log is configured")
			}
		})
	}
}
