package sandbox

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
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
	wh.Send(zap.NewNop(), map[string]string{}, done)
	if err := <-done; err == nil || n.Load() != 3 {
		t.Fatalf("err %v after %d attempts, want an error after 3", err, n.Load())
	}
}
