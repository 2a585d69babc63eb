package caddymodule

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
