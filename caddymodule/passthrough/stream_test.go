package passthrough

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// Answers of unknown length and event streams reach the browser as the
// provider sends them (FlushInterval 0 buffers only answers of known
// length, as Caddy's reverse_proxy does).
func TestUnknownLengthAnswersStream(t *testing.T) {
	for _, ct := range []string{"application/json", "text/event-stream"} {
		t.Run(ct, func(t *testing.T) {
			release := make(chan struct{})
			var released atomic.Bool
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write([]byte("first\n"))
				w.(http.Flusher).Flush()
				<-release
				_, _ = w.Write([]byte("second\n"))
			}))
			defer up.Close()
			base, _ := url.Parse(up.URL)
			p := New(base, "/0/omni/", http.DefaultTransport, nil)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = p.Forward(w, r, "stream", nil)
			}))
			defer front.Close()
			// A proxy that held the answer back would never show the first
			// line: release the provider eventually so the test ends, and
			// check the order.
			timer := time.AfterFunc(20*time.Second, func() { released.Store(true); close(release) })
			resp, err := http.Get(front.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "first\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			if released.Load() {
				t.Fatal("the first line arrived only after the provider finished: the answer was buffered")
			}
			if timer.Stop() {
				close(release)
			}
		})
	}
}
