package onfido_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestEmulatorWebhookRetries: the emulator signs the exact bytes it sends
// with X-SHA2-Signature and retries until the receiver answers a 20x.
func TestEmulatorWebhookRetries(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var sigs []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(b))
		sigs = append(sigs, r.Header.Get("X-SHA2-Signature"))
		if len(bodies) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent) // any 20x is delivered
	}))
	defer recv.Close()
	in := testcaddy.Start(t, fmt.Sprintf(`
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		onfido {
			api_token %s
			workflow_id %s
			webhook_token %s
			webhook_url %s
			webhook_retry 10ms 2 5
		}
	}
}`, apiToken, workflowID, hookToken, recv.URL))
	call := func(path, body string) map[string]any {
		st, _, out := testcaddy.Do(t, testcaddy.Client(), "POST", in.URL("sandbox", path), strings.NewReader(body),
			"Authorization", "Token token="+apiToken, "Content-Type", "application/json")
		if st != 201 {
			t.Fatalf("%s: %d %s", path, st, out)
		}
		return testcaddy.JSON(t, out)
	}
	app := call("/v3.6/applicants", `{"first_name":"Ann","last_name":"Lee"}`)
	run := call("/v3.6/workflow_runs", fmt.Sprintf(`{"workflow_id":%q,"applicant_id":%q}`, workflowID, app["id"]))
	if run["status"] != "awaiting_input" || run["sdk_token"] == nil || run["applicant_id"] != app["id"] {
		t.Fatalf("run %v", run)
	}
	link := run["link"].(map[string]any)["url"].(string)
	resp, err := testcaddy.Client().PostForm(link, url.Values{"outcome": {"review"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("outcome: %v %v", err, resp)
	}
	resp.Body.Close()
	var n int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n = len(bodies)
		mu.Unlock()
		if n >= 3 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // a fourth delivery would be a bug
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 3 {
		t.Fatalf("%d deliveries, want 3 (two refused, then delivered)", len(bodies))
	}
	for i, b := range bodies {
		if b != bodies[0] || sigs[i] != sig(hookToken, b) {
			t.Fatalf("delivery %d: body or signature differs: %s %s", i, b, sigs[i])
		}
	}
	var ev struct {
		Payload struct {
			ResourceType string `json:"resource_type"`
			Action       string `json:"action"`
			Object       struct {
				ID, Status, CompletedAt string
			} `json:"object"`
			Resource map[string]any `json:"resource"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &ev); err != nil {
		t.Fatal(err)
	}
	p := ev.Payload
	if p.ResourceType != "workflow_run" || p.Action != "workflow_run.completed" || p.Object.ID != run["id"] || p.Object.Status != "review" || p.Resource["status"] != "review" {
		t.Fatalf("payload %s", bodies[0])
	}
}
