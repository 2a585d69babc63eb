package caddymodule_test

import (
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestExpiredSessionsAreSwept: a session past its expiry and its retention
// is deleted from storage by the background sweep.
func TestExpiredSessionsAreSwept(t *testing.T) {
	first, every := caddymodule.SweepFirst, caddymodule.SweepEvery
	caddymodule.SweepFirst, caddymodule.SweepEvery = 50*time.Millisecond, 100*time.Millisecond
	// Registered before Caddy starts, so it runs after Caddy has stopped.
	t.Cleanup(func() { caddymodule.SweepFirst, caddymodule.SweepEvery = first, every })

	in := testcaddy.Start(t, cfg("session_ttl 1s\n\t\tsession_retention 1s"))
	startSession(t, in, testcaddy.Client())
	if len(testcaddy.Snapshot(t, in.Storage)) != 1 {
		t.Fatal("want one stored session")
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(testcaddy.Snapshot(t, in.Storage)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired session was never swept")
		}
		time.Sleep(50 * time.Millisecond)
	}

}
