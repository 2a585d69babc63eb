package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestBrowserDemo drives the demo page in a real browser against the
// shipped Caddyfile, at desktop and phone widths: for each provider a
// journey that passes and one that fails, and the hint shown when no webhook
// comes. The hint's wait is shortened with ?hintAfter=1 (the page's default
// is 20 s); nothing here asserts how long anything took.
func TestBrowserDemo(t *testing.T) {
	requireChromium(t)
	in := testcaddy.Start(t, rootCaddyfile(t), testcaddy.Options{LogFile: true})
	dumpLogs(t, in)
	// One host for the whole run: the session cookies belong to it.
	d := &demo{in: in, site: fmt.Sprintf("http://localhost:%d", in.Ports["site"])}
	for _, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) {
			t.Run("incode", func(t *testing.T) { d.incode(startBrowser(t, vp)) })
			t.Run("regula", func(t *testing.T) { d.regula(startBrowser(t, vp)) })
			t.Run("veriff", func(t *testing.T) { d.veriff(startBrowser(t, vp)) })
			t.Run("sumsub", func(t *testing.T) { d.sumsub(startBrowser(t, vp)) })
			t.Run("onfido", func(t *testing.T) { d.onfido(startBrowser(t, vp)) })
			t.Run("focalx", func(t *testing.T) { d.focalx(startBrowser(t, vp), vp.name) })
			t.Run("no-webhook", func(t *testing.T) { d.noWebhook(startBrowser(t, vp)) })
		})
	}
	// Per width: two verifications, and one left unfinished for the hint.
	checkCalls(t, in, 3*len(viewports))
}

type demo struct {
	in   *testcaddy.Instance
	site string
}

// steps is the timeline's kinds of step, each once, in page order.
const stepsJS = `(() => { const seen = []; for (const li of document.querySelectorAll('#timeline li[data-step]')) {
	if (!seen.includes(li.dataset.step)) seen.push(li.dataset.step); } return seen.join(' '); })()`

// checkPage checks what every state of the page shows: a time on every
// timeline step, what stayed on the server, no token, and nothing wider than
// the screen. After a hosted flow it also checks the sandbox badge: the
// page tells the sandbox from the hosted flow's address (Focalx has none).
func (d *demo) checkPage(b *browser, hosted bool, serverKeeps ...string) {
	b.t.Helper()
	if hosted {
		b.waitVisible("sandbox-badge")
	}
	if got := b.eval(`String(document.querySelectorAll('#timeline li[data-step]').length === document.querySelectorAll('#timeline li[data-step] time').length)`); got != "true" {
		b.fatalf("a timeline step has no time")
	}
	keeps := b.eval(`document.getElementById('server-keeps').innerText`)
	for _, k := range serverKeeps {
		if !strings.Contains(keeps, k) {
			b.fatalf("\"what stayed on the server\" does not name %q: %q", k, keeps)
		}
	}
	if got := b.eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
		b.fatalf("the page is wider than the screen (%s px for %s px)", b.eval(`String(document.documentElement.scrollWidth)`), b.eval(`String(window.innerWidth)`))
	}
	b.checkNoToken()
}

// waitSteps waits until the timeline shows every kind of step in want
// (webhooks may be several, and may land before or after the return).
func (d *demo) waitSteps(b *browser, want ...string) {
	b.t.Helper()
	b.waitEval("timeline steps "+strings.Join(want, ", "), stepsJS, func(s string) bool {
		have := strings.Fields(s)
		for _, w := range want {
			found := false
			for _, h := range have {
				found = found || h == w
			}
			if !found {
				return false
			}
		}
		return have[0] == "created"
	})
}

// finishHosted picks an outcome on the sandbox's hosted page and submits.
func (d *demo) finishHosted(b *browser, outcome string) {
	b.t.Helper()
	b.waitVisible("sandbox-badge") // the styled sandbox page
	b.click("outcome-" + outcome)
	b.click("submit")
	b.waitVisible("verify") // back on the demo
}

func (d *demo) incode(b *browser) {
	sandboxFlow := d.in.URL("sandbox", "/incode/flow/")
	b.open(d.site + "/?provider=incode")
	b.waitText("result", "not started")
	d.checkWording(b)

	// Start, then leave the hosted page without finishing.
	b.click("verify")
	b.waitVisible("outcome-pass")
	firstFlow := b.location()
	if !strings.HasPrefix(firstFlow, sandboxFlow) {
		b.fatalf("the button led to %s, want the sandbox's hosted page %s…", firstFlow, sandboxFlow)
	}
	b.keep("hosted")
	b.open(d.site + "/?provider=incode")
	b.waitText("result", "pending")
	b.waitText("provider-status", "Started")
	d.waitSteps(b, "created", "handoff")

	// Pending: the button resumes the same verification.
	b.click("verify")
	b.waitVisible("outcome-pass")
	if loc := b.location(); loc != firstFlow {
		b.fatalf("a pending verification was not resumed: went to %s, first went to %s", loc, firstFlow)
	}
	d.finishHosted(b, "pass")
	if want := d.site + "/?provider=incode&returned=1"; b.location() != want {
		b.fatalf("the hosted page sent the browser to %s, want the redirectionUrl %s", b.location(), want)
	}
	b.waitText("result", "verified")
	b.waitText("provider-status", "Onboarding finished")
	b.waitText("score", "OK")
	d.waitSteps(b, "created", "handoff", "returned", "webhook", "result", "decision")
	b.waitTextMatch("timeline", regexp.MustCompile(`Webhook received and verified: Onboarding finished[\s\S]*Score read from Incode with the executive token: OK[\s\S]*Approved`))
	b.waitTextMatch("browser-holds", regexp.MustCompile(`uniqueId [0-9a-f-]{36}[\s\S]*cookie it cannot read`))
	d.checkPage(b, true, "API key", "Executive token", "Webhook secret")
	b.keep("verified")

	// Finished: the button starts a new verification.
	b.click("verify")
	b.waitVisible("outcome-fail")
	if second := b.location(); second == firstFlow || !strings.HasPrefix(second, sandboxFlow) {
		b.fatalf("a finished verification did not start a new one: went to %s (first: %s)", second, firstFlow)
	}
	d.finishHosted(b, "fail")
	b.waitText("result", "not verified")
	b.waitText("score", "Fail")
	b.waitTextMatch("timeline", regexp.MustCompile(`Not approved`))
	d.checkPage(b, true, "API key", "Executive token", "Webhook secret")
	b.keep("failed")
}

func (d *demo) regula(b *browser) {
	b.open(d.site + "/?provider=incode")
	b.click("provider-regula") // picked in the page
	b.waitTextMatch("provider-about", regexp.MustCompile(`Regula`))
	b.waitText("result", "not started")

	b.click("verify")
	b.waitVisible("outcome-pass")
	first, err := url.Parse(b.location())
	if err != nil || first.Path != "/capture" || first.Host == strings.TrimPrefix(d.site, "http://") {
		b.fatalf("the button led to %s, want the sandbox's /capture page", b.location())
	}
	b.keep("hosted")
	d.finishHosted(b, "pass")
	if want := d.site + "/?provider=regula&returned=1"; b.location() != want {
		b.fatalf("Regula's hosted page sent the browser to %s, want %s", b.location(), want)
	}
	b.waitText("result", "verified")
	b.waitText("provider-status", "Verified")
	d.waitSteps(b, "created", "handoff", "returned", "webhook", "result", "decision")
	b.waitTextMatch("timeline", regexp.MustCompile(`Status read from Regula’s results API with the API key: Verified`))
	d.checkPage(b, true, "API key", "Webhook secret")
	b.keep("verified")

	// Finished: a new verification, failed this time.
	b.click("verify")
	b.waitVisible("outcome-fail")
	if second := b.location(); second == first.String() {
		b.fatalf("a finished Regula verification did not start a new one: %s again", second)
	}
	d.finishHosted(b, "fail")
	b.waitText("result", "not verified")
	b.waitText("provider-status", "Not verified")
	d.checkPage(b, true, "API key", "Webhook secret")
	b.keep("failed")
}

// veriff: Veriff's hosted flow, picked in the page; each outcome is a
// button of the sandbox's page, which sends the person back with ?redirect=
// (Veriff's own callback must be https).
func (d *demo) veriff(b *browser) {
	sandboxFlow := d.in.URL("sandbox", "/v/")
	b.open(d.site + "/?provider=incode")
	b.click("provider-veriff")
	b.waitTextMatch("provider-about", regexp.MustCompile(`Veriff`))
	b.waitText("result", "not started")

	b.click("verify")
	b.waitVisible("outcome-approved")
	first := b.location()
	if !strings.HasPrefix(first, sandboxFlow) {
		b.fatalf("the button led to %s, want the sandbox's hosted flow %s…", first, sandboxFlow)
	}
	b.waitVisible("sandbox-badge") // the styled sandbox page
	b.keep("hosted")

	// Veriff asks for a resubmission: the result stays pending, and the
	// button goes back to the same verification.
	b.click("outcome-resubmission_requested")
	b.waitVisible("verify")
	b.waitText("provider-status", "Resubmission requested")
	b.waitText("result", "pending")
	b.waitText("hint", "Continues your verification in progress.")
	if b.eval(`String(document.getElementById('waiting').hidden)`) != "true" {
		b.fatalf("after a resubmission request the page says it waits for the result")
	}
	b.keep("resubmission")
	b.click("verify")
	b.waitVisible("outcome-approved")
	if loc := b.location(); loc != first {
		b.fatalf("a resubmission did not go back to the same verification: went to %s, first went to %s", loc, first)
	}
	b.click("outcome-approved")
	b.waitVisible("verify") // back on the demo
	if want := d.site + "/?provider=veriff&returned=1"; b.location() != want {
		b.fatalf("Veriff's hosted flow sent the browser to %s, want %s", b.location(), want)
	}
	b.waitText("result", "verified")
	b.waitText("provider-status", "Approved")
	d.waitSteps(b, "created", "handoff", "returned", "webhook", "result", "decision")
	b.waitTextMatch("timeline", regexp.MustCompile(`Webhook received and verified[\s\S]*HMAC signature matched[\s\S]*Decision from Veriff’s signed webhook: Approved[\s\S]*Approved`))
	b.waitTextMatch("browser-holds", regexp.MustCompile(`uniqueId [0-9a-f-]{36}[\s\S]*cookie it cannot read[\s\S]*hosted-flow link`))
	d.checkPage(b, true, "API key", "Shared secret")
	b.keep("verified")

	// Finished: a new verification, declined this time.
	b.click("verify")
	b.waitVisible("outcome-declined")
	if second := b.location(); second == first || !strings.HasPrefix(second, sandboxFlow) {
		b.fatalf("a finished Veriff verification did not start a new one: went to %s (first: %s)", second, first)
	}
	b.click("outcome-declined")
	b.waitVisible("verify")
	b.waitText("result", "not verified")
	b.waitText("provider-status", "Declined")
	b.waitTextMatch("timeline", regexp.MustCompile(`Not approved`))
	d.checkPage(b, true, "API key", "Shared secret")
	b.keep("failed")
}

// sumsub: the page launches Sumsub's WebSDK with the token /start answers;
// on the sandbox (the site's X-IDV-Provider-API is a loopback address) it
// opens the sandbox's stand-in for the SDK screen, which sends the person
// back.
func (d *demo) sumsub(b *browser) {
	standIn := d.in.URL("sandbox", "/websdk/")
	b.open(d.site + "/?provider=incode")
	b.click("provider-sumsub")
	b.waitTextMatch("provider-about", regexp.MustCompile(`Sumsub`))
	b.waitText("result", "not started")

	b.click("verify")
	b.waitVisible("outcome-GREEN")
	first := b.location()
	if !strings.HasPrefix(first, standIn) {
		b.fatalf("the button led to %s, want the sandbox's WebSDK stand-in %s…", first, standIn)
	}
	b.waitVisible("sandbox-badge")
	b.keep("hosted")

	// Sumsub asks for a resubmission (RED, RETRY): the result stays
	// pending, and the button goes back to the same applicant's screen.
	b.click("outcome-RETRY")
	b.waitVisible("verify")
	b.waitText("provider-status", "Resubmission requested (RETRY)")
	b.waitText("result", "pending")
	b.waitText("hint", "Continues your verification in progress.")
	b.keep("resubmission")
	b.click("verify")
	b.waitVisible("outcome-GREEN")
	if loc := b.location(); !strings.HasPrefix(loc, standIn) {
		b.fatalf("a resubmission led to %s, want the WebSDK stand-in", loc)
	}
	b.click("outcome-GREEN")
	b.waitVisible("verify")
	if want := d.site + "/?provider=sumsub&returned=1"; b.location() != want {
		b.fatalf("the WebSDK stand-in sent the browser to %s, want %s", b.location(), want)
	}
	b.waitText("result", "verified")
	b.waitText("provider-status", "Approved (GREEN)")
	d.waitSteps(b, "created", "handoff", "returned", "webhook", "result", "decision")
	b.waitTextMatch("timeline", regexp.MustCompile(`Handed off to Sumsub’s WebSDK[\s\S]*X-Payload-Digest matched[\s\S]*Review from Sumsub’s signed webhook: Approved \(GREEN\)[\s\S]*Approved`))
	b.waitTextMatch("browser-holds", regexp.MustCompile(`uniqueId [0-9a-f-]{36}[\s\S]*cookie it cannot read[\s\S]*WebSDK access token`))
	d.checkPage(b, true, "App token and secret key", "Webhook secret")
	b.keep("verified")

	// Finished: a new verification, rejected this time.
	b.click("verify")
	b.waitVisible("outcome-RED")
	if second := b.location(); second == first || !strings.HasPrefix(second, standIn) {
		b.fatalf("a finished Sumsub verification did not start a new one: went to %s (first: %s)", second, first)
	}
	b.click("outcome-RED")
	b.waitVisible("verify")
	b.waitText("result", "not verified")
	b.waitText("provider-status", "Rejected (RED)")
	b.waitTextMatch("timeline", regexp.MustCompile(`Not approved`))
	d.checkPage(b, true, "App token and secret key", "Webhook secret")
	b.keep("failed")
}

// onfido: a Studio workflow run's hosted link, which returns to the page
// (completed_redirect_url, from the page's redirectionUrl).
func (d *demo) onfido(b *browser) {
	link := d.in.URL("sandbox", "/wr/")
	b.open(d.site + "/?provider=incode")
	b.click("provider-onfido")
	b.waitTextMatch("provider-about", regexp.MustCompile(`Onfido`))
	b.waitText("result", "not started")

	b.click("verify")
	b.waitVisible("outcome-approved")
	first := b.location()
	if !strings.HasPrefix(first, link) {
		b.fatalf("the button led to %s, want the sandbox's hosted link %s…", first, link)
	}
	b.waitVisible("sandbox-badge")
	b.keep("hosted")
	b.click("outcome-approved")
	b.waitVisible("verify")
	if want := d.site + "/?provider=onfido&returned=1"; b.location() != want {
		b.fatalf("Onfido's hosted link sent the browser to %s, want %s", b.location(), want)
	}
	b.waitText("result", "verified")
	b.waitText("provider-status", "Approved")
	d.waitSteps(b, "created", "handoff", "returned", "webhook", "result", "decision")
	b.waitTextMatch("timeline", regexp.MustCompile(`X-SHA2-Signature matched[\s\S]*Outcome from Onfido’s signed webhook: Approved[\s\S]*Approved`))
	d.checkPage(b, true, "API token", "Webhook token")
	b.keep("verified")

	// Finished: a new verification, declined this time.
	b.click("verify")
	b.waitVisible("outcome-declined")
	if second := b.location(); second == first || !strings.HasPrefix(second, link) {
		b.fatalf("a finished Onfido verification did not start a new one: went to %s (first: %s)", second, first)
	}
	b.click("outcome-declined")
	b.waitVisible("verify")
	b.waitText("result", "not verified")
	b.waitText("provider-status", "Declined")
	b.waitTextMatch("timeline", regexp.MustCompile(`Not approved`))
	d.checkPage(b, true, "API token", "Webhook token")
	b.keep("failed")
}

// fault makes the sandbox(es) answer the next Focalx GetToken with status.
func (d *demo) fault(t *testing.T, status, retryAfter int) {
	t.Helper()
	for name := range d.in.Ports {
		if !strings.HasPrefix(name, "sandbox") {
			continue
		}
		body := fmt.Sprintf(`{"provider":"focalx","op":"GetToken","status":%d,"retry_after":%d,"times":1}`, status, retryAfter)
		if code, _, resp := testcaddy.Do(t, testcaddy.Client(), "POST", d.in.URL(name, "/__sandbox/faults"), strings.NewReader(body)); code != http.StatusOK {
			t.Fatalf("adding a fault to %s: %d %s", name, code, resp)
		}
	}
}

func (d *demo) focalx(b *browser, width string) {
	b.open(d.site + "/?provider=focalx")
	b.waitVisible("email")
	b.waitText("result", "not started")
	// Focalx has no hosted flow to tell: the core's X-IDV-Sandbox header does.
	b.waitVisible("sandbox-badge")

	// Pass: a token for this user, which the page holds but never shows.
	b.setValue("email", "ann."+width+"@example.com")
	b.click("verify")
	b.waitText("result", "token issued")
	b.waitTextMatch("timeline", regexp.MustCompile(`Token requested[\s\S]*Token issued by Focalx, valid 2 hours`))
	b.waitTextMatch("browser-holds", regexp.MustCompile(`A short-lived token\s*Valid 2 hours`))
	d.waitSteps(b, "created", "result")
	d.checkPage(b, false, "Client key and client secret", "Encryption key", "Public key")
	b.keep("token")

	// Fail: Focalx refuses the site's credentials; the page says which.
	d.fault(b.t, http.StatusUnauthorized, 0)
	b.setValue("email", "bob."+width+"@example.com") // not cached
	b.click("verify")
	b.waitText("result", "refused")
	b.waitTextMatch("error", regexp.MustCompile(`Focalx rejected the client key \(401\): check client_key`))
	d.waitSteps(b, "created", "decision")
	b.keep("refused")

	// Rate limited: the page says when to retry, from Retry-After.
	d.fault(b.t, http.StatusTooManyRequests, 120)
	b.setValue("email", "eve."+width+"@example.com")
	b.click("verify")
	b.waitTextMatch("error", regexp.MustCompile(`Try again in 2 minutes \(at \d`))
	b.keep("429")
}

func (d *demo) noWebhook(b *browser) {
	// The person leaves the hosted flow and comes back; no webhook comes.
	b.open(d.site + "/?provider=incode")
	b.click("verify")
	b.waitVisible("outcome-pass")
	b.open(d.site + "/?provider=incode&returned=1&hintAfter=1")
	b.waitText("result", "pending")
	b.waitVisible("waiting")
	b.waitVisible("no-webhook")
	b.waitText("webhook-url", d.site+"/api/webhook")
	b.waitTextMatch("no-webhook", regexp.MustCompile(`webhook URL[\s\S]*publicly reachable[\s\S]*webhook secret`))
	if href := b.eval(`document.getElementById('docs-link').href`); !strings.Contains(href, "docs/operations.md") {
		b.fatalf("the hint links to %q, want the operations guide (docs/operations.md)", href)
	}
	d.checkPage(b, true, "API key", "Executive token", "Webhook secret")
	if got := b.eval(`document.getElementById('webhook-secret-option').textContent`); got != "webhook_auth" {
		b.fatalf("the hint names %q for Incode's webhook secret, want webhook_auth", got)
	}
	b.keep("hint")

	// A provider that signs its webhooks: the hint names its own URL and
	// the option holding the signing secret.
	b.open(d.site + "/?provider=veriff")
	b.click("verify")
	b.waitVisible("outcome-approved")
	b.open(d.site + "/?provider=veriff&returned=1&hintAfter=1")
	b.waitText("result", "pending")
	b.waitVisible("no-webhook")
	b.waitText("webhook-url", d.site+"/veriff/api/webhook")
	b.waitText("webhook-secret-option", "shared_secret")
	d.checkPage(b, true, "API key", "Shared secret")
	b.keep("hint-veriff")
}

// checkWording checks the page's readable statuses and durations.
func (d *demo) checkWording(b *browser) {
	b.t.Helper()
	for expr, want := range map[string]string{
		`idvDemo.human('ONBOARDING_FINISHED')`:                             "Onboarding finished",
		`idvDemo.human('ID_VALIDATION_FINISHED')`:                          "ID validation finished",
		`idvDemo.human('NOT_VERIFIED')`:                                    "Not verified",
		`idvDemo.human('resubmission_requested')`:                          "Resubmission requested",
		`idvDemo.humanDuration('10m0s')`:                                   "10 minutes",
		`idvDemo.humanDuration('24h0m0s')`:                                 "1 day",
		`idvDemo.humanDuration('1h30m0s')`:                                 "1 hour 30 minutes",
		`idvDemo.humanDuration('2:00:00')`:                                 "2 hours",
		`idvDemo.humanDuration('5 days, 0:00:00')`:                         "5 days",
		`idvDemo.humanText('at most 10 per 10m0s')`:                        "at most 10 per 10 minutes",
		`idvDemo.humanText('the session cookie names no live session: x')`: "the session cookie names no live session: x",
	} {
		if got := b.eval(expr); got != want {
			b.fatalf("%s = %q, want %q", expr, got, want)
		}
	}
}
