// Package e2e holds the end-to-end tests of the shipped configuration: the
// root Caddyfile, the idv handler, the offline sandbox and the demo app in
// examples/demo, driven over plain HTTP and in a real browser (Debian's
// chromium through chromedp).
//
// The browser test needs /usr/bin/chromium. Without it the test is skipped,
// except when CI is set, where it fails. Set E2E_ARTIFACTS to a directory to
// keep the screenshot taken when it fails.
package e2e
