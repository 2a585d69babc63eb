package caddymodule

import (
	"fmt"
	"testing"
	"time"
)

// TestRedactionRegistryIsBounded: credentials registered with an expiry are
// pruned once expired, and never more than maxExpiring are kept, so repeated
// executive logins cannot grow the registry (and slow every log line).
func TestRedactionRegistryIsBounded(t *testing.T) {
	base := secretCount()
	RegisterSecretUntil("expired-credential-1", time.Now().Add(-time.Second))
	RegisterSecretUntil("short-lived-credential", time.Now().Add(time.Hour))
	if got := Redact("x short-lived-credential y"); got != "x "+Redacted+" y" {
		t.Fatalf("a live credential was not redacted: %q", got)
	}
	if secretCount() != base+1 {
		t.Fatalf("an expired credential was kept: %d entries, want %d", secretCount(), base+1)
	}
	for i := range 500 {
		RegisterSecretUntil(fmt.Sprintf("login-token-%04d", i), time.Now().Add(time.Duration(i+1)*time.Minute))
	}
	if n := secretCount() - base; n > maxExpiring {
		t.Fatalf("500 logins left %d expiring entries, want at most %d", n, maxExpiring)
	}
	if got := Redact("login-token-0499"); got != Redacted {
		t.Fatalf("the newest credential was pruned: %q", got)
	}
	RegisterSecret("configured-secret-forever")
	for i := range 200 {
		RegisterSecretUntil(fmt.Sprintf("later-token-%04d", i), time.Now().Add(48*time.Hour))
	}
	if got := Redact("configured-secret-forever"); got != Redacted {
		t.Fatalf("a configured secret was pruned: %q", got)
	}
}
