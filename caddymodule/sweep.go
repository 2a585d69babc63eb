package caddymodule

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// SweepFirst and SweepEvery schedule the deletion of long-expired sessions:
// the first sweep a while after start, then periodically.
var (
	SweepFirst = time.Minute
	SweepEvery = time.Hour
)

// DefaultRetention is how long an expired session is kept, so that a late
// webhook (providers retry failed deliveries for minutes to days) still
// finds it.
const DefaultRetention = 7 * 24 * time.Hour

// sweeper deletes a namespace's long-expired sessions in the background. It
// lives in a UsagePool keyed by namespace: a reload keeps the one goroutine
// and hands it the new configuration.
type sweeper struct {
	first, every time.Duration // the schedule, fixed when the sweeper starts
	store        atomic.Pointer[session.StorageStore]
	retention    atomic.Int64
	logger       atomic.Pointer[zap.Logger]
	cancel       context.CancelFunc
}

func (s *sweeper) Destruct() error { s.cancel(); return nil }

var sweepers = caddy.NewUsagePool()

func (s *sweeper) run(ctx context.Context) {
	t := time.NewTimer(s.first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		store, logger := s.store.Load(), s.logger.Load()
		n, err := store.Sweep(ctx, time.Duration(s.retention.Load()))
		if c, cerr := sweepClaims(ctx, store.Storage, store.Namespace, time.Now()); cerr != nil && ctx.Err() == nil {
			logger.Warn("sweeping expired claims failed", zap.String("error", redactErr(cerr)), zap.Int("deleted", c))
		}
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("sweeping expired sessions failed", zap.String("error", redactErr(err)), zap.Int("deleted", n))
		case n > 0:
			logger.Info("deleted expired sessions", zap.Int("deleted", n), zap.Duration("retention", time.Duration(s.retention.Load())))
		}
		t.Reset(s.every)
	}
}

// startSweeper starts (or updates) the namespace's sweeper and returns its
// release func.
func (h *Handler) startSweeper(store *session.StorageStore) (func(), error) {
	key := "sweep/" + h.namespace
	v, _, err := sweepers.LoadOrNew(key, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithCancel(context.Background())
		s := &sweeper{cancel: cancel, first: SweepFirst, every: SweepEvery}
		s.store.Store(store)
		s.retention.Store(int64(h.SessionRetention))
		s.logger.Store(h.logger)
		go s.run(ctx)
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	s := v.(*sweeper)
	s.store.Store(store)
	s.retention.Store(int64(h.SessionRetention))
	s.logger.Store(h.logger)
	return func() { _, _ = sweepers.Delete(key) }, nil
}
