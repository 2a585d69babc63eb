package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// sessionView is what /api/session and its event stream send.
type sessionView struct {
	Success  bool   `json:"success"`
	UniqueID string `json:"uniqueId"`
	Provider string `json:"provider"`
	Status   string `json:"status"`
	Score    string `json:"score"`
	Result   string `json:"result"`
	Events   []struct {
		Status     string    `json:"status"`
		ReceivedAt time.Time `json:"receivedAt"`
	} `json:"events"`
	Token string `json:"token"` // must never be there
}

type onboarding struct {
	Success     bool   `json:"success"`
	Token       string `json:"token"`
	InterviewID string `json:"interviewId"`
	UniqueID    string `json:"uniqueId"`
	URL         string `json:"url"`
	Error       string `json:"error"`
}

// TestJourneyHTTP walks the demo's journey without a browser, against the
// shipped Caddyfile: start (and resume) a session with a redirectionUrl,
// finish it on the sandbox's hosted page, come back through the redirect, and
// see the webhook's result pushed on the session's event stream, which was
// open before the webhook arrived. Then a new session (new=1) that fails.
func TestJourneyHTTP(t *testing.T) {
	in := testcaddy.Start(t, rootCaddyfile(t), testcaddy.Options{LogFile: true})
	dumpLogs(t, in)
	site := fmt.Sprintf("http://localhost:%d", in.Ports["site"])
	sandbox := in.URL("sandbox", "")
	returnTo := site + "/?returned=1"
	c := testcaddy.Client() // a cookie jar, redirects not followed

	start := func(extra string) onboarding {
		t.Helper()
		status, hd, body := testcaddy.Do(t, c, "GET", site+"/api/onboarding-url?redirectionUrl="+url.QueryEscape(returnTo)+extra, nil)
		var ob onboarding
		if err := json.Unmarshal([]byte(body), &ob); err != nil || status != http.StatusOK || !ob.Success {
			t.Fatalf("onboarding-url%s: %d %s", extra, status, body)
		}
		if ob.Token == "" || ob.InterviewID == "" || ob.UniqueID == "" || !strings.HasPrefix(ob.URL, sandbox+"/incode/flow/") {
			t.Fatalf("onboarding-url%s: incomplete answer %s", extra, body)
		}
		if sc := hd.Get("Set-Cookie"); sc != "" {
			for _, attr := range []string{"idv_session=", "Path=/api", "HttpOnly", "SameSite=Lax"} {
				if !strings.Contains(sc, attr) {
					t.Errorf("onboarding-url%s: cookie %q lacks %s", extra, sc, attr)
				}
			}
		}
		return ob
	}

	// No session yet: a JSON 401.
	status, _, body := testcaddy.Do(t, c, "GET", site+"/api/session", nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
		t.Fatalf("session before start: %d %s", status, body)
	}
	// A redirectionUrl on another origin is refused, with the reason.
	status, _, body = testcaddy.Do(t, c, "GET", site+"/api/onboarding-url?redirectionUrl="+url.QueryEscape("https://evil.example/"), nil)
	if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
		t.Fatalf("foreign redirectionUrl: %d %s", status, body)
	}

	first := start("")
	// The demo resumes a pending session: same session, same page.
	if again := start(""); again.UniqueID != first.UniqueID || again.URL != first.URL {
		t.Fatalf("resume gave another session: %+v, then %+v", first, again)
	}

	events, stop := openEvents(t, c, site)
	defer stop()
	if v := nextView(t, events); v.Result != "pending" || v.UniqueID != first.UniqueID {
		t.Fatalf("first event: %+v", v)
	}

	finishHosted(t, c, first.URL, "pass", returnTo)
	status, _, body = testcaddy.Do(t, c, "GET", returnTo, nil)
	if status != http.StatusOK || !strings.Contains(body, "caddy-idv demo") {
		t.Fatalf("the demo page after the redirect: %d %.200s", status, body)
	}
	v := waitResult(t, events, "verified")
	if v.Status != "ONBOARDING_FINISHED" || v.Score != "OK" || !hasEvent(v, "ONBOARDING_FINISHED") {
		t.Fatalf("verified event: %+v", v)
	}
	stop()
	// The sandbox sends the steps' webhooks (onboarding statuses, then a
	// session webhook without onboardingStatus) before ONBOARDING_FINISHED,
	// as Incode does: each is acknowledged and recorded on the session, and
	// none rewinds its status (issue 9 points 2 and 7).
	v = waitEvents(t, c, site, "ID_VALIDATION_FINISHED", "FACE_VALIDATION_FINISHED", "SESSION_SUCCEEDED", "ONBOARDING_FINISHED")
	if v.Status != "ONBOARDING_FINISHED" || v.Result != "verified" {
		t.Fatalf("a step's webhook changed the finished session: %+v", v)
	}
	for _, e := range v.Events {
		if e.ReceivedAt.IsZero() {
			t.Fatalf("an event without its time: %+v", v)
		}
	}

	// GET /api/session agrees, and never shows the token.
	status, _, body = testcaddy.Do(t, c, "GET", site+"/api/session", nil)
	if status != http.StatusOK || !strings.Contains(body, `"result":"verified"`) || strings.Contains(body, first.Token) {
		t.Fatalf("session after the webhook: %d %s", status, body)
	}

	// Finished: the demo asks for a new session, which fails this time.
	second := start("&new=1")
	if second.UniqueID == first.UniqueID || second.InterviewID == first.InterviewID {
		t.Fatalf("new=1 resumed the finished session: %+v", second)
	}
	events, stop = openEvents(t, c, site)
	defer stop()
	if v := nextView(t, events); v.Result != "pending" || v.UniqueID != second.UniqueID {
		t.Fatalf("first event of the second session: %+v", v)
	}
	finishHosted(t, c, second.URL, "fail", returnTo)
	if v := waitResult(t, events, "failed"); v.Score != "FAIL" {
		t.Fatalf("failed event: %+v", v)
	}
	if v := waitEvents(t, c, site, "ID_VALIDATION_FINISHED", "SESSION_FAILED", "ONBOARDING_FINISHED"); v.Status != "ONBOARDING_FINISHED" || v.Result != "failed" {
		t.Fatalf("failed session after the steps' webhooks: %+v", v)
	}

	checkCalls(t, in, 2)
}

func hasEvent(v sessionView, status string) bool {
	for _, e := range v.Events {
		if e.Status == status {
			return true
		}
	}
	return false
}

// waitEvents polls GET /api/session until every status has been recorded.
func waitEvents(t *testing.T, c *http.Client, site string, statuses ...string) sessionView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, body := testcaddy.Do(t, c, "GET", site+"/api/session", nil)
		var v sessionView
		if status == http.StatusOK && json.Unmarshal([]byte(body), &v) == nil {
			all := true
			for _, st := range statuses {
				all = all && hasEvent(v, st)
			}
			if all {
				return v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v never all recorded: %d %s", statuses, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finishHosted fills the sandbox's hosted page like a person would and
// checks it sends the browser back to returnTo.
func finishHosted(t *testing.T, c *http.Client, page, outcome, returnTo string) {
	t.Helper()
	status, _, body := testcaddy.Do(t, c, "GET", page, nil)
	if status != http.StatusOK || !strings.Contains(body, `id="outcome-`+outcome+`"`) || !strings.Contains(body, `id="submit"`) {
		t.Fatalf("hosted page: %d %s", status, body)
	}
	status, hd, body := testcaddy.Do(t, c, "POST", page, strings.NewReader(url.Values{"outcome": {outcome}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
	if status != http.StatusSeeOther || hd.Get("Location") != returnTo {
		t.Fatalf("hosted form: %d Location=%q %s", status, hd.Get("Location"), body)
	}
}

// openEvents opens /api/session/events with the client's cookies and sends
// each status event on the channel.
func openEvents(t *testing.T, c *http.Client, site string) (<-chan sessionView, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", site+"/api/session/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	// The same jar, but no overall timeout: the stream stays open.
	resp, err := (&http.Client{Jar: c.Jar}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("session events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("session events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ch := make(chan sessionView, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if event == "status" {
					var v sessionView
					if json.Unmarshal([]byte(data), &v) != nil {
						v = sessionView{Status: "undecodable: " + data}
					}
					select {
					case ch <- v:
					case <-ctx.Done():
						return
					}
				}
				event, data = "", ""
			case strings.HasPrefix(line, ":"): // a comment (keep-alive)
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			}
		}
	}()
	stopped := false
	return ch, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		resp.Body.Close()
		<-done
	}
}

func nextView(t *testing.T, ch <-chan sessionView) sessionView {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		if v.Token != "" {
			t.Fatal("the event stream sent the session token")
		}
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("no event on the session stream within 30s")
	}
	return sessionView{}
}

// waitResult reads events until one has the result.
func waitResult(t *testing.T, ch <-chan sessionView, result string) sessionView {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var last sessionView
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatalf("the event stream ended before result %q (last: %+v)", result, last)
			}
			if v.Token != "" {
				t.Fatal("the event stream sent the session token")
			}
			if v.Result == result {
				return v
			}
			if v.Result != "pending" {
				t.Fatalf("result %q, want %q: %+v", v.Result, result, v)
			}
			last = v
		case <-deadline:
			t.Fatalf("no event with result %q within 30s (last: %+v)", result, last)
		}
	}
}
