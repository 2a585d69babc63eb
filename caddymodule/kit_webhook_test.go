package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// kitNotify's webhooks only name a session (webhook_auth applies): what
// changed is read back by its WebhookEffect, and the answer is its own.
type kitNotify struct{ kitPlain }

var notifyStats struct {
	resolves     atomic.Int64
	fail, sawKey atomic.Bool
}

func init() { caddy.RegisterModule(kitNotify{}) }

func (kitNotify) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "idv.providers.kitnotify", New: func() caddy.Module { return new(kitNotify) }}
}

func (p *kitNotify) ParseWebhook(h http.Header, b []byte) ([]provider.KitEvent, error) {
	if h.Get("X-Hook") != "" {
		notifyStats.sawKey.Store(true)
	}
	return p.f.ParseWebhook(h, b)
}

func (p *kitNotify) WebhookEffect(_ context.Context, e *provider.EventEffect) error {
	if e.Session == nil {
		e.Event.Key = "" // another backend's session: nothing to read
		return nil
	}
	notifyStats.resolves.Add(1)
	if notifyStats.fail.Load() {
		return upstream.ClientError(upstream.ErrMalformed)
	}
	e.Event = provider.KitEvent{Event: provider.Event{Ref: "ignored", Key: "read:" + e.Session.Ref, Status: "read", Result: provider.ResultVerified},
		Decision: true}
	return nil
}

func (p *kitNotify) WebhookAnswer(_ string, body []byte) any {
	return map[string]any{"received": len(body)}
}

var (
	_ provider.WebhookEffector = (*kitNotify)(nil)
	_ provider.WebhookAnswerer = (*kitNotify)(nil)
)

// TestKitWebhookEffectReads: an effect's event is recorded, not the payload's;
// its failure is a 502 that records nothing (the sender retries); a session
// the handler does not store costs no read; the parser never sees the
// webhook_auth credential; the answer is the provider's.
func TestKitWebhookEffectReads(t *testing.T) {
	in := testcaddy.Start(t, "http://127.0.0.1:@@site@@ {\n\tidv {\n\t\tkitnotify\n\t\twebhook_auth header X-Hook s3cret\n\t}\n}")
	c := testcaddy.Client()
	_, _, a := do(t, c, "GET", in.URL("site", "/api/start"), "")
	body := fmt.Sprintf(`{"ref":%q,"key":"forged","status":"forged","result":"failed","decision":true}`, a["sessionId"])
	send := func(b string) (int, map[string]any) {
		st, _, m := do(t, testcaddy.Client(), "POST", in.URL("site", "/api/webhook"), b, "X-Hook", "s3cret")
		return st, m
	}
	before := notifyStats.resolves.Load()
	notifyStats.fail.Store(true)
	if st, m := send(body); st != 502 || notifyStats.resolves.Load() != before+1 {
		t.Fatalf("failing read: %d %v", st, m)
	}
	if _, _, v := do(t, c, "GET", in.URL("site", "/api/session"), ""); v["result"] != "pending" || len(v["events"].([]any)) != 0 {
		t.Fatalf("after a failed read: %v", v)
	}
	notifyStats.fail.Store(false)
	if st, m := send(body); st != 200 || m["received"] != float64(len(body)) || m["success"] != nil {
		t.Fatalf("delivery: %d %v", st, m)
	}
	if _, _, v := do(t, c, "GET", in.URL("site", "/api/session"), ""); v["status"] != "read" || v["result"] != "verified" || len(v["events"].([]any)) != 1 {
		t.Fatalf("after the delivery: %v", v)
	}
	n := notifyStats.resolves.Load()
	if st, _ := send(`{"ref":"elsewhere","key":"k"}`); st != 200 || notifyStats.resolves.Load() != n {
		t.Fatalf("unknown ref: %d, %d reads", st, notifyStats.resolves.Load()-n)
	}
	if notifyStats.sawKey.Load() {
		t.Fatal("the parser saw the webhook_auth credential")
	}
}

// TestKitWebhookIgnoresAnotherProvidersSession: two handlers sharing a
// storage_namespace: a webhook of one never changes a session of the other,
// even when it names that session's reference.
func TestKitWebhookIgnoresAnotherProvidersSession(t *testing.T) {
	in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	route /a/* {
		idv {
			prefix /a
			kitfake {
				secret s
			}
			storage_namespace shared
			session_quota off
		}
	}
	route /b/* {
		idv {
			prefix /b
			kitplain
			storage_namespace shared
			session_quota off
			webhook_auth header X-Hook h
		}
	}
}`)
	c := testcaddy.Client()
	_, _, b := do(t, c, "GET", in.URL("site", "/b/start"), "")
	ref, _ := b["sessionId"].(string)
	if ref == "" {
		t.Fatalf("start: %v", b)
	}
	body := fmt.Sprintf(`{"ref":%q,"key":"k1","status":"forged","result":"failed","decision":true}`, ref)
	if st, _, m := do(t, testcaddy.Client(), "POST", in.URL("site", "/a/webhook"), body, "X-Sig", sign("s", body)); st != 200 {
		t.Fatalf("webhook: %d %v", st, m)
	}
	if _, _, v := do(t, c, "GET", in.URL("site", "/b/session"), ""); v["result"] != "pending" || len(v["events"].([]any)) != 0 {
		t.Fatalf("another provider's webhook changed the session: %v", v)
	}
}
