package tokencache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTest() (*Cache, *clock) {
	c := New()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now = clk.now
	return c, clk
}

func TestSingleFlight(t *testing.T) {
	c, clk := newTest()
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (string, time.Time, error) {
		fetches.Add(1)
		<-release // hold every caller until all are waiting
		return "tok", clk.now().Add(time.Hour), nil
	}
	const n = 100
	var wg sync.WaitGroup
	results := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = c.Get(context.Background(), "k", fetch)
		}()
	}
	// Wait until the fetch is in flight, then let it finish.
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if got := fetches.Load(); got != 1 {
		t.Fatalf("%d fetches for %d concurrent callers, want 1", got, n)
	}
	for _, r := range results {
		if r != "tok" {
			t.Fatalf("a caller got %q", r)
		}
	}
	if s := c.Stats(); s.Fetches != 1 || s.Misses != 1 || s.Hits+s.Coalesced != n-1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCachedUntilMarginThenRefreshed(t *testing.T) {
	c, clk := newTest()
	n := 0
	fetch := func(context.Context) (string, time.Time, error) {
		n++
		return "tok" + string(rune('0'+n)), clk.now().Add(100 * time.Minute), nil
	}
	first, _ := c.Get(context.Background(), "k", fetch)
	clk.add(89 * time.Minute) // margin is 5m of a 100m lifetime... 10% capped at 5m
	if again, _ := c.Get(context.Background(), "k", fetch); again != first || n != 1 {
		t.Fatalf("token refetched before its margin: %q (fetches %d)", again, n)
	}
	clk.add(7 * time.Minute) // 96m: inside the last 5 minutes
	refreshed, _ := c.Get(context.Background(), "k", fetch)
	if refreshed == first || n != 2 {
		t.Fatalf("token not refreshed inside its margin: %q (fetches %d)", refreshed, n)
	}
	if s := c.Stats(); s.Refreshes != 1 {
		t.Fatalf("refresh not counted: %+v", s)
	}
}

func TestErrorsAreNotCachedAndDropKeepsNewer(t *testing.T) {
	c, clk := newTest()
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), "k", func(context.Context) (string, time.Time, error) { return "", time.Time{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	tok, err := c.Get(context.Background(), "k", func(context.Context) (string, time.Time, error) { return "a", clk.now().Add(time.Hour), nil })
	if err != nil || tok != "a" {
		t.Fatalf("after an error: %q %v", tok, err)
	}
	c.Drop("k", "stale") // another token: keep "a"
	if c.Len() != 1 {
		t.Fatal("Drop removed a token it did not name")
	}
	c.Drop("k", "a")
	if c.Len() != 0 {
		t.Fatal("Drop kept the refused token")
	}
}

func TestExpiredTokenNotCached(t *testing.T) {
	c, clk := newTest()
	c.Set("k", "old", clk.now().Add(-time.Minute))
	if c.Len() != 0 {
		t.Fatal("an expired token was cached")
	}
}

func TestOneCallerGivingUpDoesNotFailOthers(t *testing.T) {
	c, clk := newTest()
	started := make(chan struct{})
	release := make(chan struct{})
	fetch := func(ctx context.Context) (string, time.Time, error) {
		close(started)
		<-release
		if ctx.Err() != nil {
			return "", time.Time{}, ctx.Err()
		}
		return "tok", clk.now().Add(time.Hour), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "k", fetch); errc <- err }()
	<-started
	got := make(chan string, 1)
	go func() { tok, _ := c.Get(context.Background(), "k", fetch); got <- tok }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(release)
	if tok := <-got; tok != "tok" {
		t.Fatalf("the other caller got %q: the first caller's cancel leaked into the fetch", tok)
	}
}

func TestSharedSurvivesReload(t *testing.T) {
	a, releaseA := Shared("reload-test")
	b, releaseB := Shared("reload-test") // the new config provisions before the old one is cleaned up
	releaseA()
	if a != b {
		t.Fatal("the same key gave two caches")
	}
	c, releaseC := Shared("reload-test")
	defer releaseC()
	releaseB()
	if c != a {
		t.Fatal("the cache was dropped while still in use")
	}
}

func TestMargin(t *testing.T) {
	for _, tc := range []struct{ life, want time.Duration }{
		{24 * time.Hour, 5 * time.Minute}, {10 * time.Minute, time.Minute}, {5 * time.Second, time.Second},
	} {
		if got := Margin(tc.life); got != tc.want {
			t.Errorf("Margin(%v) = %v, want %v", tc.life, got, tc.want)
		}
	}
}
