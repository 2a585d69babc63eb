package focalx_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestConcurrentFirstReports: two distinct first reports of one inspection,
// delivered together, create one session and are both recorded. The second
// report of each pair is sent 0 to 14 ms later, so that pairs overlap at
// different points; the interleaving that lost a report before the session
// was created under the storage lock is forced, deterministically, by
// caddymodule's TestRecorderConcurrentFirstEvents.
func TestConcurrentFirstReports(t *testing.T) {
	t.Setenv("FOCALX_TEST_REPORT_KEY", reportKey)
	in := testcaddy.Start(t, reportConfig(""))
	const inspections = 30
	send := func(id string, n int) {
		body := fmt.Sprintf(`{"InspectionId":%q,"RegistrationNumber":"R%d"}`, id, n)
		status, _, out := testcaddy.Do(t, testcaddy.Client(), "POST", in.URL("site", "/api/damage-report?x-api-key="+reportKey), strings.NewReader(body))
		if status != http.StatusOK {
			t.Errorf("%s report %d: %d %s", id, n, status, out)
		}
	}
	var wg sync.WaitGroup
	for i := range inspections {
		id := fmt.Sprintf("concurrent-first-%02d", i)
		wg.Add(2)
		go func() { defer wg.Done(); send(id, 1) }()
		go func() { defer wg.Done(); time.Sleep(time.Duration(i%15) * time.Millisecond); send(id, 2) }()
	}
	wg.Wait()
	for i := range inspections {
		id := fmt.Sprintf("concurrent-first-%02d", i)
		if s := storedSession(t, in.Storage, id); s == nil || len(s.Events) != 2 || s.Status != "DAMAGE_REPORT_RECEIVED" {
			t.Errorf("%s: stored session %+v, want one with both reports", id, s)
		}
	}
}
