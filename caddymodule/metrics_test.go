package caddymodule_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

func metricsCfg(extra string) string {
	return strings.Replace(cfg("webhook_auth header X-S s3cret-hook\n"+extra), `respond "frontend"`, "handle /metrics {\n\t\tmetrics\n\t}\n\trespond \"frontend\"", 1)
}

// metric returns the value of the sample whose name and labels match.
func metric(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	labels = append(labels, `provider="incode"`)
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if ok {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

func scrape(t *testing.T, in *testcaddy.Instance) string {
	t.Helper()
	status, _, body := testcaddy.Do(t, testcaddy.Client(), "GET", in.URL("site", "/metrics"), nil)
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	return body
}

// The collectors are process-wide, so other tests in this binary have
// counted too: the test compares against a scrape taken at its start.
func TestMetricsSurviveReload(t *testing.T) {
	in := testcaddy.Start(t, metricsCfg(""))
	base := scrape(t, in)
	c := testcaddy.Client()
	ob := startSession(t, in, c)
	startSession(t, in, c) // resumed
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ { // the executive token: one miss, the rest hits or coalesced
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, testcaddy.Client(), "GET", in.URL("site", "/api/onboarding-status?interviewId="+ob["interviewId"].(string)), "")
		}()
	}
	wg.Wait()
	body := fmt.Sprintf(`{"interviewId":%q,"onboardingStatus":"ID_VALIDATION_FINISHED"}`, ob["interviewId"])
	do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), body, "X-S", "s3cret-hook")
	do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), body, "X-S", "s3cret-hook")
	do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), body, "X-S", "wrong")

	text := scrape(t, in)
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"caddy_idv_provider_calls_total", []string{`op="omni/start"`, `status="200"`}, 1},
		{"caddy_idv_provider_calls_total", []string{`op="executive/log-in"`, `status="200"`}, 1},
		{"caddy_idv_provider_calls_total", []string{`op="omni/get/onboarding/status"`, `status="200"`}, 10},
		{"caddy_idv_provider_call_duration_seconds_count", []string{`op="omni/start"`}, 1},
		{"caddy_idv_token_cache_events_total", []string{`event="miss"`}, 1},
		{"caddy_idv_sessions_total", []string{`outcome="started"`}, 1},
		{"caddy_idv_sessions_total", []string{`outcome="resumed"`}, 1},
		{"caddy_idv_webhooks_total", []string{`outcome="received"`}, 2},
		{"caddy_idv_webhooks_total", []string{`outcome="deduplicated"`}, 1},
		{"caddy_idv_webhooks_total", []string{`outcome="rejected"`}, 1},
	} {
		if got := metric(t, text, want.name, want.labels...) - metric(t, base, want.name, want.labels...); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	hits := metric(t, text, "caddy_idv_token_cache_events_total", `event="hit"`) - metric(t, base, "caddy_idv_token_cache_events_total", `event="hit"`)
	coalesced := metric(t, text, "caddy_idv_token_cache_events_total", `event="coalesced"`) - metric(t, base, "caddy_idv_token_cache_events_total", `event="coalesced"`)
	if hits+coalesced < 9 {
		t.Errorf("executive token: %v hits and %v coalesced waiters for 9 later requests", hits, coalesced)
	}

	if err := in.Reload(metricsCfg("timeout 10s")); err != nil {
		t.Fatalf("reload: %v", err)
	}
	startSession(t, in, testcaddy.Client())
	after := scrape(t, in)
	if got := metric(t, after, "caddy_idv_sessions_total", `outcome="started"`) - metric(t, base, "caddy_idv_sessions_total", `outcome="started"`); got != 2 {
		t.Fatalf("sessions started after a reload = %v, want 2 (counts kept, one more)", got)
	}
	if n := testcaddy.CountCalls(testcaddy.Calls(t, in.URL("sandbox", "")), "executive/log-in"); n != 1 {
		t.Fatalf("%d executive logins: the reload lost the executive token", n)
	}
}
