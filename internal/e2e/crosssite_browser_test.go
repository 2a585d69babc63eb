package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// crossSiteCaddyfile is a victim site on localhost with a cookie-bound
// Incode passthrough, and an attacker's page on 127.0.0.1 (another site to
// the browser) linking and posting to it.
func crossSiteCaddyfile() string {
	victim := "http://localhost:@@site@@/api/0/omni/get/score"
	page := `<!doctype html><title>prize</title>
<a id="link" href="` + victim + `">win a prize</a>
<form id="form" method="post" action="` + victim + `"><button id="post">claim it</button></form>`
	return `
http://localhost:@@site@@ {
	idv {
		incode {
			api_url http://127.0.0.1:@@sandbox@@
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
		}
	}
	header Content-Type "text/html; charset=utf-8"
	respond "<!doctype html><title>app</title><p id=app>the app</p>"
}
http://127.0.0.1:@@evil@@ {
	header Content-Type "text/html; charset=utf-8"
	respond ` + "`" + page + "`" + `
}
http://127.0.0.1:@@sandbox@@ {
	idv_sandbox {
		incode {
			api_key k
			flow_id f
			client_id c
			admin_email a@b.c
			admin_password p
		}
	}
}`
}

// TestCrossSiteNavigationInBrowser: in a real Chromium with a live session
// cookie, a link or a form on another site to the passthrough never
// reaches the provider, while the site's own fetch with X-IDV: 1 does (and
// without it does not).
func TestCrossSiteNavigationInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("%s is missing (%v): install it with `apt-get update && apt-get install -y chromium`", chromiumPath, err)
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the browser test cannot run: %s", msg)
		}
		t.Skipf("\n\n*** SKIPPING THE BROWSER TEST: %s ***\n\n", msg)
	}
	in := testcaddy.Start(t, crossSiteCaddyfile())
	site := fmt.Sprintf("http://localhost:%d", in.Ports["site"])
	evil := fmt.Sprintf("http://127.0.0.1:%d", in.Ports["evil"])
	sb := in.URL("sandbox", "")
	scores := func() int { return testcaddy.CountCalls(testcaddy.Calls(t, sb), "get/score") }

	b := startBrowser(t, viewports[0])
	b.do("open the app", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.ID("app")))
	if s := b.evalInt(`fetch("/api/start").then(r => r.status)`); s != 200 {
		b.fatalf("starting a session from the app: %d", s)
	}
	if s := b.evalInt(`fetch("/api/0/omni/get/score").then(r => r.status)`); s != 401 {
		b.fatalf("the app's fetch without X-IDV: %d, want 401", s)
	}
	if s := b.evalInt(`fetch("/api/0/omni/get/score", {headers: {"X-IDV": "1"}}).then(r => r.status)`); s != 200 {
		b.fatalf("the app's fetch with X-IDV: %d, want 200", s)
	}
	if n := scores(); n != 1 {
		t.Fatalf("the provider saw %d score calls, want the app's one", n)
	}

	for _, el := range []string{"link", "post"} {
		b.do("open the other site", chromedp.Navigate(evil+"/"), chromedp.WaitVisible(chromedp.ID(el)))
		b.click(el)
		text := b.waitBody("not allowed")
		if !strings.Contains(text, `"success":false`) {
			b.fatalf("%s from another site: the browser shows %q", el, text)
		}
		if n := scores(); n != 1 {
			t.Fatalf("%s from another site reached the provider (%d score calls)", el, n)
		}
	}
}

// evalInt evaluates a promise-returning expression in the page.
func (b *browser) evalInt(js string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitBody waits until the page's text contains want and returns it.
func (b *browser) waitBody(want string) string {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		cancel()
		if err == nil {
			last = text
			if strings.Contains(text, want) {
				return text
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.fatalf("waited %s for the page to show %q; it shows %q", stepTimeout, want, last)
	return ""
}
