package caddymodule

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// racingStore forces the interleaving that loses a first event when a
// missing session is created apart from its update: both first deliveries
// find no session, and a second Create waits until an Update has landed
// (so that it would write over it).
type racingStore struct {
	*session.StorageStore
	lookups     sync.WaitGroup
	mu          sync.Mutex
	creates     int
	updated     chan struct{}
	updatedOnce sync.Once
}

func (s *racingStore) LoadByRef(ctx context.Context, ref string) (*session.Session, error) {
	got, err := s.StorageStore.LoadByRef(ctx, ref)
	s.lookups.Done()
	s.lookups.Wait() // both deliveries look before either writes
	return got, err
}

func (s *racingStore) Create(ctx context.Context, sess *session.Session) error {
	s.mu.Lock()
	s.creates++
	second := s.creates > 1
	s.mu.Unlock()
	if second {
		select {
		case <-s.updated:
		case <-time.After(5 * time.Second):
		}
	}
	return s.StorageStore.Create(ctx, sess)
}

func (s *racingStore) Update(ctx context.Context, id string, fn func(*session.Session) (bool, error)) (*session.Session, error) {
	defer s.updatedOnce.Do(func() { close(s.updated) })
	return s.StorageStore.Update(ctx, id, fn)
}

// TestRecorderConcurrentFirstEvents: two first events of one record (two
// damage reports of one inspection, say), delivered together, are both
// recorded on the one session the Recorder creates.
func TestRecorderConcurrentFirstEvents(t *testing.T) {
	real := &session.StorageStore{Storage: &certmagic.FileStorage{Path: t.TempDir()}, Namespace: "recorder"}
	t.Cleanup(real.Close)
	st := &racingStore{StorageStore: real, updated: make(chan struct{})}
	st.lookups.Add(2)
	h := &Handler{name: "demo", namespace: "recorder", store: st, logger: zap.NewNop(),
		host: &provider.Host{Now: time.Now}, SessionTTL: caddy.Duration(time.Hour)}
	create := &session.Session{UniqueID: session.NewID(), Status: "RECEIVED"}
	var wg sync.WaitGroup
	for _, key := range []string{"report-a", "report-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := provider.KitEvent{Event: provider.Event{Ref: "record-1", Key: key, Status: "RECEIVED"}}
			if _, isNew, err := h.recordPush(context.Background(), []provider.KitEvent{ev}, create); err != nil || !isNew {
				t.Errorf("%s: new %v, %v", key, isNew, err)
			}
		}()
	}
	wg.Wait()
	s, err := real.LoadByRef(context.Background(), "record-1")
	if err != nil || len(s.Events) != 2 || s.Provider != "demo" || s.ExpiresAt.IsZero() {
		t.Fatalf("stored %+v %v: want the session with both events", s, err)
	}
}

// urlResumer fills in a URL, as /onboarding-url does for a session /start
// began.
type urlResumer struct{}

func (urlResumer) ResumeStart(_ context.Context, _ string, s *session.Session) (bool, error) {
	s.URL = "https://flow.example/" + s.Ref
	if s.Meta == nil {
		s.Meta = map[string]string{}
	}
	s.Meta["clientId"] = "c1"
	return true, nil
}

// TestResumeWritesOnlyWhatItChanged: a resume stores what the provider
// filled in, and nothing of the copy it read earlier: a claim released (or
// a decision recorded) since then is not written back.
func TestResumeWritesOnlyWhatItChanged(t *testing.T) {
	ctx := context.Background()
	st := &session.StorageStore{Storage: &certmagic.FileStorage{Path: t.TempDir()}, Namespace: "resume"}
	t.Cleanup(st.Close)
	now := time.Now().UTC()
	s := &session.Session{UniqueID: session.NewID(), Provider: "demo", Ref: "r1", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Meta: map[string]string{"claim:approve": now.Add(time.Hour).Format(time.RFC3339Nano)}}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	stale, err := st.Load(ctx, s.UniqueID) // what the start route read
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, s.UniqueID, func(x *session.Session) (bool, error) { // the claim released meanwhile
		delete(x.Meta, "claim:approve")
		x.Result = provider.ResultVerified
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	h := &Handler{name: "demo", store: st, logger: zap.NewNop()}
	got, err := h.kitResume(ctx, urlResumer{}, "/onboarding-url", stale)
	if err != nil {
		t.Fatal(err)
	}
	if _, back := got.Meta["claim:approve"]; back || got.URL == "" || got.Meta["clientId"] != "c1" || got.Result != provider.ResultVerified {
		t.Fatalf("after the resume: %+v", got)
	}
}
