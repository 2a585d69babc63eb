package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds each wait of the browser test. It is a ceiling for a
// stuck run, not an expected duration.
const stepTimeout = 30 * time.Second

// browser is a chromedp tab with the test's helpers. Every failing helper
// takes a full-page screenshot first.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
}

// viewport is a screen the demo must work on.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var viewports = []viewport{
	{name: "desktop", width: 1024, height: 900},
	{name: "phone", width: 390, height: 844, mobile: true}, // a common phone, portrait
}

// requireChromium skips the test without chromium, or fails it under CI.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("%s is missing (%v): install it with `apt-get update && apt-get install -y chromium`", chromiumPath, err)
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the browser test cannot run: %s", msg)
		}
		t.Skipf("\n\n*** SKIPPING THE BROWSER TEST: %s ***\n\n", msg)
	}
}

func startBrowser(t *testing.T, vp viewport) *browser {
	t.Helper()
	profile := t.TempDir() // made before the browser, so removed after it
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(int(vp.width), int(vp.height)),
	)
	// chromedp may still log from its goroutines while the browser stops;
	// t.Logf must not be called once the test is over.
	var logMu sync.Mutex
	logDone := false
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if !logDone {
			t.Logf("chromedp: "+format, args...)
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	b := &browser{t: t, ctx: ctx}
	var stopConsole sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		stopConsole.Wait()
		logMu.Lock()
		logDone = true
		logMu.Unlock()
	})
	// Start the browser with a context that has no deadline: it lives as
	// long as that context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	emulate := []chromedp.EmulateViewportOption{}
	if vp.mobile {
		emulate = append(emulate, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, emulate...)); err != nil {
		t.Fatalf("emulating a %dx%d screen: %v", vp.width, vp.height, err)
	}
	messages := chromedp.Console(ctx)
	stopConsole.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
		}
	})
	// Registered after the browser's cleanup, so it runs before it.
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot()
			b.mu.Lock()
			if len(b.console) > 0 {
				t.Logf("browser console:\n%s", strings.Join(b.console, "\n"))
			}
			b.mu.Unlock()
		}
	})
	return b
}

// screenshot saves a full-page PNG under $E2E_ARTIFACTS (or a temporary
// directory) and logs its path. It runs once per test.
func (b *browser) screenshot() { b.shot("") }

// keep saves a screenshot named after the test and label when
// E2E_SCREENSHOTS is set (to look at the pages), and does nothing otherwise.
func (b *browser) keep(label string) {
	if os.Getenv("E2E_SCREENSHOTS") != "" {
		b.shot(label)
	}
}

func (b *browser) shot(label string) {
	t := b.t
	dir := os.Getenv("E2E_ARTIFACTS")
	if label != "" {
		dir, label = os.Getenv("E2E_SCREENSHOTS"), "-"+label
	}
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + label + ".png"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if label == "" {
		t.Logf("screenshot of %s at failure: %s", loc, path)
	}
}

func (b *browser) fatalf(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf(format, args...) // the cleanup takes the screenshot
}

// do runs steps with a step timeout.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("verify")))
}

func (b *browser) click(id string) {
	b.t.Helper()
	b.do("click #"+id, chromedp.Click(chromedp.ID(id)))
}

func (b *browser) waitVisible(id string) {
	b.t.Helper()
	b.do("wait for #"+id, chromedp.WaitVisible(chromedp.ID(id)))
}

func (b *browser) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fatalf("reading the location: %v", err)
	}
	return loc
}

// waitText waits until the element's whole text is exactly want ("verified"
// must not match "not verified").
func (b *browser) waitText(id, want string) {
	b.t.Helper()
	b.waitTextFunc(id, fmt.Sprintf("%q", want), func(s string) bool { return s == want })
}

func (b *browser) waitTextMatch(id string, re *regexp.Regexp) {
	b.t.Helper()
	b.waitTextFunc(id, re.String(), re.MatchString)
}

// waitTextFunc reads the element's text until ok accepts it. It reads again
// on its own instead of polling in the page, so it survives navigations.
func (b *browser) waitTextFunc(id, want string, ok func(string) bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	last, lastErr := "", error(nil)
	for {
		// A short timeout per read: the element can be missing while a
		// page loads.
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		text, err := chromedp.Run(rctx, chromedp.TextContent(chromedp.ID(id)))
		rcancel()
		switch {
		case err == nil:
			text = strings.TrimSpace(text)
			if ok(text) {
				return
			}
			last, lastErr = text, nil
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			b.fatalf("#%s: waited %s for text %s; last text %q (last read error: %v)", id, stepTimeout, want, last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkNoToken asserts the page shows no session credential.
func (b *browser) checkNoToken() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		b.fatalf("reading the page: %v", err)
	}
	// The sandbox's tokens are JWTs: three base64url parts.
	if jwt := regexp.MustCompile(`eyJ[\w-]+\.[\w-]+\.[\w-]+`).FindString(text); jwt != "" {
		b.fatalf("the page shows a token: %.20s…", jwt)
	}
}

// setValue replaces the value of the input with the given id.
func (b *browser) setValue(id, value string) {
	b.t.Helper()
	b.do("set #"+id, chromedp.SetValue(chromedp.ID(id), value))
}

// eval evaluates a JavaScript expression that yields a string.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// waitEval evaluates a JavaScript expression yielding a string until ok
// accepts it. Like waitTextFunc it survives navigations.
func (b *browser) waitEval(what, expr string, ok func(string) bool) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	last, lastErr := "", error(nil)
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := chromedp.Run(rctx, chromedp.Evaluate[string](expr))
		rcancel()
		switch {
		case err == nil:
			if ok(s) {
				return s
			}
			last, lastErr = s, nil
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			b.fatalf("waited %s for %s; last value %q (last error: %v)", stepTimeout, what, last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
