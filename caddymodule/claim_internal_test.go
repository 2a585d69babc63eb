package caddymodule

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// TestSweepClaims: expired claim records of sessions never stored are
// deleted, live ones are kept.
func TestSweepClaims(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	now := time.Now().UTC()
	dir := path.Join("idv", "ns", "claims")
	for name, until := range map[string]time.Time{"old": now.Add(-time.Minute), "live": now.Add(time.Hour)} {
		if err := st.Store(ctx, path.Join(dir, name), []byte(until.Format(time.RFC3339Nano))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Store(ctx, path.Join(dir, "garbled"), []byte("not a time")); err != nil {
		t.Fatal(err)
	}
	n, err := sweepClaims(ctx, st, "ns", now)
	if err != nil || n != 2 {
		t.Fatalf("swept %d, %v; want 2", n, err)
	}
	if st.Exists(ctx, path.Join(dir, "old")) || st.Exists(ctx, path.Join(dir, "garbled")) || !st.Exists(ctx, path.Join(dir, "live")) {
		t.Fatal("the wrong claims were deleted")
	}
	if n, err := sweepClaims(ctx, st, "empty-namespace", now); err != nil || n != 0 {
		t.Fatalf("no claims dir: %d, %v", n, err)
	}
}
