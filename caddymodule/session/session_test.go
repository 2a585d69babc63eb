package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func newStore(t *testing.T) (*StorageStore, *time.Time) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &StorageStore{Storage: &certmagic.FileStorage{Path: t.TempDir()}, Namespace: "test", Now: func() time.Time { return now }}
	t.Cleanup(st.Close)
	return st, &now
}

func TestCreateLoadByIDAndRef(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), Provider: "incode", Token: "tok", Ref: "interview-1", ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(ctx, s.UniqueID)
	if err != nil || got.Token != "tok" || got.Ref != "interview-1" || !got.CreatedAt.Equal(*now) {
		t.Fatalf("Load: %+v %v", got, err)
	}
	byRef, err := st.LoadByRef(ctx, "interview-1")
	if err != nil || byRef.UniqueID != s.UniqueID {
		t.Fatalf("LoadByRef: %+v %v", byRef, err)
	}
	if _, err := st.LoadByRef(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown ref: %v", err)
	}
	*now = now.Add(2 * time.Hour)
	if _, err := st.Load(ctx, s.UniqueID); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := st.LoadByRef(ctx, "interview-1"); err != nil {
		t.Fatalf("webhooks must still find an expired session: %v", err)
	}
}

func TestIDsAreValidatedBeforeStorage(t *testing.T) {
	st, _ := newStore(t)
	for _, id := range []string{"", "x", "../../../etc/passwd", "00000000-0000-0000-0000-000000000000",
		strings.ToUpper(NewID()), NewID() + "/..", "{" + NewID() + "}", "urn:uuid:" + NewID()} {
		if _, err := st.Load(context.Background(), id); !errors.Is(err, ErrMalformedID) {
			t.Errorf("Load(%q) = %v, want ErrMalformedID", id, err)
		}
	}
	if _, err := st.Load(context.Background(), NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestUpdateIsSerialised(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	s := &Session{UniqueID: NewID(), ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := string(rune('a' + i))
			_, err := st.Update(ctx, s.UniqueID, func(s *Session) (bool, error) {
				s.Events = append(s.Events, Event{Key: key})
				return true, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := st.Load(ctx, s.UniqueID)
	if len(got.Events) != 5 {
		t.Fatalf("concurrent updates lost writes: %d events", len(got.Events))
	}
}

func BenchmarkLoadWithManySessions(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(strings.Repeat("x", 0)+itoa(n), func(b *testing.B) {
			st := &StorageStore{Storage: &certmagic.FileStorage{Path: b.TempDir()}, Namespace: "bench"}
			ctx := context.Background()
			var last string
			for i := 0; i < n; i++ {
				s := &Session{UniqueID: NewID(), Ref: itoa(i), ExpiresAt: time.Now().Add(time.Hour)}
				if err := st.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
				last = s.UniqueID
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := st.Load(ctx, last); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

func TestSweepDeletesOnlyLongExpiredSessions(t *testing.T) {
	st, now := newStore(t)
	ctx := context.Background()
	mk := func(ref string, expires time.Time) *Session {
		s := &Session{UniqueID: NewID(), Ref: ref, ExpiresAt: expires}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := mk("old", now.Add(-10*24*time.Hour))   // expired 10 days ago
	recent := mk("recent", now.Add(-2*time.Hour)) // expired, within retention
	live := mk("live", now.Add(time.Hour))
	n, err := st.Sweep(ctx, 7*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("Sweep: %d %v, want 1 deleted", n, err)
	}
	if _, err := st.load(ctx, old.UniqueID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old session is still there: %v", err)
	}
	if _, err := st.LoadByRef(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old session's index is still there: %v", err)
	}
	for _, s := range []*Session{recent, live} {
		if _, err := st.LoadByRef(ctx, s.Ref); err != nil {
			t.Fatalf("%s was swept: %v", s.Ref, err)
		}
	}
	if n, err := st.Sweep(ctx, 7*24*time.Hour); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	empty := &StorageStore{Storage: st.Storage, Namespace: "none"}
	if n, err := empty.Sweep(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("sweeping an empty namespace: %d %v", n, err)
	}
}
