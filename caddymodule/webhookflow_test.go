package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// flowCfg configures both sides of the webhook with one method: the
// sandbox's sender and the sidecar's receiver.
func flowCfg(receiver, sender string) string {
	return fmt.Sprintf(`
http://127.0.0.1:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
		}
		%s
	}
	respond "frontend"
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
			webhook_url http://127.0.0.1:@@site@@/api/webhook
			%s
			webhook_retry 50ms 2 4
		}
	}
}`, receiver, sender)
}

// TestSandboxWebhooksEveryMethod runs the hosted flow with each
// authentication method configured on both sides and checks the result
// reaches the session; with the sender's credentials wrong, it never does.
func TestSandboxWebhooksEveryMethod(t *testing.T) {
	for _, tc := range []struct {
		name, receiver, sender string
		delivered              bool
	}{
		{"header", "webhook_auth header X-Hook s3cret", "webhook_auth header X-Hook s3cret", true},
		{"basic", "webhook_auth basic incode pw", "webhook_auth basic incode pw", true},
		{"oauth2", "webhook_auth oauth2 incode-id incode-secret",
			"webhook_auth oauth2 incode-id incode-secret http://127.0.0.1:@@site@@/api/webhook/token", true},
		{"wrong header", "webhook_auth header X-Hook s3cret", "webhook_auth header X-Hook guess", false},
		{"wrong oauth2", "webhook_auth oauth2 incode-id incode-secret",
			"webhook_auth oauth2 incode-id guess http://127.0.0.1:@@site@@/api/webhook/token", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testcaddy.Start(t, flowCfg(tc.receiver, tc.sender), testcaddy.Options{LogFile: true})
			c := testcaddy.Client()
			ob := startSession(t, in, c)
			status, _, body := testcaddy.Do(t, testcaddy.Client(), "POST", ob["url"].(string), strings.NewReader("outcome=pass"),
				"Content-Type", "application/x-www-form-urlencoded")
			if status != 200 {
				t.Fatalf("hosted flow: %d %s", status, body)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, _, m := do(t, c, "GET", in.URL("site", "/api/session"), "")
				// Without the webhook the session may still reach its result
				// through the Incode refresher: the sender's log tells.
				if !tc.delivered && strings.Contains(in.Logs(), "sandbox webhook delivered") {
					t.Fatal("a webhook with wrong credentials was accepted")
				}
				if tc.delivered && m["result"] == "verified" {
					return
				}
				if !tc.delivered && strings.Count(in.Logs(), "sandbox webhook failed") >= 4 {
					return // every attempt refused, nothing recorded
				}
				if time.Now().After(deadline) {
					if tc.delivered {
						t.Fatalf("the webhook never landed: %v", m)
					}
					t.Fatal("the sender did not retry as configured")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
