package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// TestSandboxHostedPagesLeadBack checks that Regula's hosted stand-in, which
// has no redirect of its own, still gives a way back to the site: the done
// page links to the page the person came from (the Referer the form was
// shown with), and never to a link that is not http(s).
func TestSandboxHostedPagesLeadBack(t *testing.T) {
	in := testcaddy.Start(t, rootCaddyfile(t), testcaddy.Options{})
	site := fmt.Sprintf("http://localhost:%d", in.Ports["site"])
	c := testcaddy.Client()

	for _, tc := range []struct {
		name, referer, want string
	}{
		{name: "referer", referer: site + "/", want: site + "/"},
		{name: "unsafe", referer: "javascript:alert(1)", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := testcaddy.Do(t, c, "GET", site+"/regula/api/start?new=1", nil, "X-IDV", "1")
			var start struct {
				URL string `json:"url"`
			}
			if status != http.StatusOK || json.Unmarshal([]byte(body), &start) != nil || start.URL == "" {
				t.Fatalf("/regula/api/start: %d %s", status, body)
			}
			status, _, page := testcaddy.Do(t, c, "GET", start.URL, nil, "Referer", tc.referer)
			if status != http.StatusOK || !strings.Contains(page, `id="sandbox-badge"`) || !strings.Contains(page, `id="outcome-pass"`) {
				t.Fatalf("the hosted page is not the styled sandbox form: %d\n%s", status, page)
			}
			form := url.Values{"outcome": {"pass"}}
			if m := regexp.MustCompile(`name="return" value="([^"]*)"`).FindStringSubmatch(page); m != nil {
				form.Set("return", html.UnescapeString(m[1]))
			}
			status, _, done := testcaddy.Do(t, c, "POST", start.URL, strings.NewReader(form.Encode()),
				"Content-Type", "application/x-www-form-urlencoded")
			if status != http.StatusOK || !strings.Contains(done, `id="done"`) {
				t.Fatalf("finishing: %d\n%s", status, done)
			}
			link := regexp.MustCompile(`id="return" href="([^"]*)"`).FindStringSubmatch(done)
			switch {
			case tc.want == "" && link != nil:
				t.Fatalf("the done page links to %q, from a Referer that is no http(s) URL", link[1])
			case tc.want != "" && (link == nil || html.UnescapeString(link[1]) != tc.want):
				t.Fatalf("the done page does not lead back to %s:\n%s", tc.want, done)
			}
		})
	}
}
