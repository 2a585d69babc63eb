package caddymodule

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// slowRefresher counts its provider reads and holds each until released.
type slowRefresher struct {
	calls, inFlight, maxInFlight atomic.Int64
	release                      chan struct{}
}

func (p *slowRefresher) ProvisionIDV(caddy.Context, *provider.Host) error { return nil }
func (p *slowRefresher) Routes() []provider.Route                         { return nil }
func (p *slowRefresher) Secrets() []string                                { return nil }
func (p *slowRefresher) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	for {
		m := p.maxInFlight.Load()
		if n <= m || p.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	<-p.release
	p.inFlight.Add(-1)
	return provider.KitEvent{}, nil // nothing new: nothing recorded
}

func refreshHandler(p provider.Provider, ns string) *Handler {
	return &Handler{provider: p, namespace: ns, logger: zap.NewNop(), Timeout: caddy.Duration(time.Minute)}
}

// TestRefreshIsCoalesced: however many streams and /session polls ask at
// once, one session is read from the provider once per interval.
func TestRefreshIsCoalesced(t *testing.T) {
	p := &slowRefresher{release: make(chan struct{})}
	h := refreshHandler(p, "coalesce-"+session.NewID())
	s := &session.Session{UniqueID: session.NewID()}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.refresh(context.Background(), s)
		}()
	}
	// Let the first read start, then let it finish.
	for p.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(p.release)
	wg.Wait()
	h.refresh(context.Background(), s) // within the interval: no read either
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("%d provider reads for one session, want 1", n)
	}
}

// TestRefreshesInFlightAreBounded: many sessions refreshed at once never
// have more than MaxRefreshes provider reads in flight.
func TestRefreshesInFlightAreBounded(t *testing.T) {
	p := &slowRefresher{release: make(chan struct{})}
	h := refreshHandler(p, "bounded-"+session.NewID())
	var wg sync.WaitGroup
	n := 3 * MaxRefreshes
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.refresh(context.Background(), &session.Session{UniqueID: session.NewID()})
		}()
	}
	// Wait until the slots are full (the others skip their turn and return).
	for p.inFlight.Load() < int64(MaxRefreshes) {
		time.Sleep(time.Millisecond)
	}
	close(p.release)
	wg.Wait()
	if m := p.maxInFlight.Load(); m > int64(MaxRefreshes) {
		t.Fatalf("%d provider reads in flight, bound %d", m, MaxRefreshes)
	}
	if c := p.calls.Load(); c >= int64(n) {
		t.Fatalf("%d reads for %d sessions: nothing was bounded", c, n)
	}
}
