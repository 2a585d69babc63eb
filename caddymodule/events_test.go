package caddymodule_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestManyStreamsOfOneSession: every stream of a session gets the webhook's
// status (they share one watch), with the headers of an event stream.
func TestManyStreamsOfOneSession(t *testing.T) {
	old := caddymodule.EventPoll
	caddymodule.EventPoll = time.Hour // only the push path can deliver in time
	t.Cleanup(func() { caddymodule.EventPoll = old })
	in := testcaddy.Start(t, cfg("webhook_auth header X-Webhook-Secret s"))
	c := testcaddy.Client()
	ob := startSession(t, in, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 5
	events := make([]chan string, n)
	for i := range events {
		req, _ := http.NewRequestWithContext(ctx, "GET", in.URL("site", "/api/session/events"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("stream %d: %d %v", i, resp.StatusCode, resp.Header)
		}
		ch := make(chan string, 10)
		events[i] = ch
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					ch <- data
				}
			}
			close(ch)
		}()
		if first := <-ch; !strings.Contains(first, `"result":"pending"`) {
			t.Fatalf("stream %d, first event: %s", i, first)
		}
	}
	do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), webhookBody(ob["interviewId"].(string)), "X-Webhook-Secret", "s")
	for i, ch := range events {
		select {
		case ev := <-ch:
			if !strings.Contains(ev, `"status":"ID_VALIDATION_FINISHED"`) {
				t.Fatalf("stream %d: %s", i, ev)
			}
		case <-ctx.Done():
			t.Fatalf("stream %d never got the webhook's status", i)
		}
	}
}
