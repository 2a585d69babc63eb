package sandbox

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.WriteHeader(500)
		case 2:
			w.WriteHeader(200) // a 200 without a JSON body does not count as delivered
			_, _ = w.Write([]byte("ok"))
		default:
			w.WriteHeader(204)
		}
	}))
	defer srv.Close()
	wh := &Webhooks{URL: srv.URL, First: caddy.Duration(10 * time.Millisecond), Factor: 2, Attempts: 5}
	done := make(chan error, 1)
	wh.Send(zap.NewNop(), map[string]string{"interviewId": "x"}, done)
	if err := <-done; err != nil {
		t.Fatalf("not delivered: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("%d deliveries, want 3 (500, 200 without JSON, 204)", got)
	}
}

func TestWebhookGivesUpAfterAttempts(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); w.WriteHeader(503) }))
	defer srv.Close()
	wh := &Webhooks{URL: srv.URL, First: caddy.Duration(5 * time.Millisecond), Factor: 1, Attempts: 3}
	done := make(chan error, 1)
	core, logs := observer.New(zap.InfoLevel)
	wh.Send(zap.New(core), map[string]string{}, done)
	if err := <-done; err == nil || n.Load() != 3 {
		t.Fatalf("err %v after %d attempts, want an error after 3", err, n.Load())
	}
	// "will retry" only while it will; then one WARN that it gave up.
	if got := logs.FilterMessage("sandbox webhook failed; will retry").Len(); got != 2 {
		t.Errorf("%d \"will retry\" lines, want 2 (after attempts 1 and 2)", got)
	}
	gaveUp := logs.FilterMessage("sandbox webhook not delivered; giving up").All()
	if len(gaveUp) != 1 || gaveUp[0].Level != zap.WarnLevel || gaveUp[0].ContextMap()["attempts"] != int64(3) {
		t.Errorf("giving up logged as %v", gaveUp)
	}
}
