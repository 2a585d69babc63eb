package caddymodule

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

func TestCookieSecureUnderTLS(t *testing.T) {
	initMetrics()
	h := &Handler{Prefix: "/api"}
	s := &session.Session{UniqueID: session.NewID(), ExpiresAt: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		url    string
		secure bool
	}{{"https://app.example/api/start", true}, {"http://app.example/api/start", false}} {
		w := httptest.NewRecorder()
		h.bindSession(w, httptest.NewRequest("GET", tc.url, nil), s)
		ck := w.Header().Get("Set-Cookie")
		if strings.Contains(ck, "; Secure") != tc.secure || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") || !strings.Contains(ck, "Path=/api") {
			t.Errorf("%s: cookie %q", tc.url, ck)
		}
	}
}

func TestRedact(t *testing.T) {
	RegisterSecret("a-configured-secret")
	RegisterSecret("short") // too short to register: would redact words
	line := "key a-configured-secret tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln short"
	got := Redact(line)
	if strings.Contains(got, "a-configured-secret") || strings.Contains(got, "eyJhbGci") || !strings.Contains(got, "short") {
		t.Fatalf("Redact: %q", got)
	}
}

// TestRedactionKeepsSinkFilters: the redacting wrapper lets each sink decide
// by its own level, and redacts what it writes.
func TestRedactionKeepsSinkFilters(t *testing.T) {
	RegisterSecret("the-registered-secret")
	infoBuf, debugBuf := &strings.Builder{}, &strings.Builder{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	tee := zapcore.NewTee(
		zapcore.NewCore(enc, zapcore.AddSync(infoBuf), zapcore.InfoLevel),
		zapcore.NewCore(enc.Clone(), zapcore.AddSync(debugBuf), zapcore.DebugLevel),
	)
	logger := withRedaction(zap.New(tee))
	logger.Debug("debug line", zap.String("k", "the-registered-secret"))
	logger.Info("info line the-registered-secret", zap.Error(fmt.Errorf("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig")))
	if strings.Contains(infoBuf.String(), "debug line") {
		t.Fatal("the INFO sink received a DEBUG line")
	}
	if !strings.Contains(debugBuf.String(), "debug line") || !strings.Contains(infoBuf.String(), "info line") {
		t.Fatalf("lines lost: %q %q", infoBuf, debugBuf)
	}
	for _, out := range []string{infoBuf.String(), debugBuf.String()} {
		if strings.Contains(out, "the-registered-secret") || strings.Contains(out, "eyJhbGci") {
			t.Fatalf("not redacted: %s", out)
		}
	}
}

func TestQuotaCountsIPv6By64(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:1234", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::9]:443", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if got := clientKey(r); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.remote, got, tc.want)
		}
	}
}
