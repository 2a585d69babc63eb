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
// status (they share one watch), with the headers of an event stream, over
// HTTP/1.1 (streams taken over from the server) and HTTP/2 (streams that
// keep their handler), and every stream ends when the config is reloaded
// (the browser's EventSource then reconnects to the new one).
func TestManyStreamsOfOneSession(t *testing.T) {
	old := caddymodule.EventPoll
	caddymodule.EventPoll = time.Hour // only the push path can deliver in time
	t.Cleanup(func() { caddymodule.EventPoll = old })
	for _, proto := range []string{"h1", "h2c"} {
		t.Run(proto, func(t *testing.T) { manyStreamsOfOneSession(t, proto) })
	}
}

func manyStreamsOfOneSession(t *testing.T, proto string) {
	conf := cfg("webhook_auth header X-Webhook-Secret s")
	in := testcaddy.Start(t, conf, testcaddy.Options{Global: "servers {\n\tprotocols h1 h2c\n}"})
	c := testcaddy.Client()
	if proto == "h2c" {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		c.Transport = &http.Transport{Protocols: &p}
	}
	// Without a session the stream is refused with a JSON error, on either
	// protocol.
	status, _, m := do(t, c, "GET", in.URL("site", "/api/session/events"), "")
	if status != 401 || m["error"] == nil {
		t.Fatalf("stream without a session: %d %v", status, m)
	}
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
		if want := map[string]int{"h1": 1, "h2c": 2}[proto]; resp.ProtoMajor != want {
			t.Fatalf("stream %d was served over %s", i, resp.Proto)
		}
		// An HTTP/1.1 stream is taken over from the server, and its head
		// (written by idv) delimits the body by closing the connection.
		if resp.Close != (proto == "h1") {
			t.Fatalf("stream %d over %s: Connection: close is %v", i, resp.Proto, resp.Close)
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
	if err := in.Reload(conf); err != nil {
		t.Fatal(err)
	}
	// A timer of its own: the request context also ends the readers.
	limit := time.After(10 * time.Second)
	for i, ch := range events {
		for open := true; open; {
			select {
			case _, open = <-ch:
			case <-limit:
				t.Fatalf("stream %d stayed open after a reload", i)
			}
		}
	}
}
