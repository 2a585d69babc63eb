package regula

import (
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// TestHandoffURL: the exact link Regula's token-URL flow prescribes, on
// the configured host (a bare host meaning https), with the token and the
// id escaped once inside the mobile link and the mobile link once more.
func TestHandoffURL(t *testing.T) {
	p := &Regula{Host: "idv.example.com", APIKey: "k", WorkflowID: "w"}
	if err := p.ProvisionIDV(caddy.Context{}, &provider.Host{}); err != nil {
		t.Fatal(err)
	}
	got := p.handoffURL("Token a.b+c/d", "s1")
	want := "https://idv.example.com/capture?url=https%3A%2F%2Fidv.example.com%2Fmobile%3Fauthorization%3DToken%2520a.b%252Bc%252Fd%26sessionId%3Ds1"
	if got != want {
		t.Fatalf("handoff URL\n got %s\nwant %s", got, want)
	}
	outer, _ := url.Parse(got)
	inner, _ := url.Parse(outer.Query().Get("url"))
	if inner.Query().Get("authorization") != "Token a.b+c/d" || inner.Query().Get("sessionId") != "s1" {
		t.Fatalf("the mobile link does not decode back: %s", inner)
	}
}

// TestEventOf: Regula's statuses map to the neutral results, and the key
// is the status so a webhook and a refresh dedupe against each other.
func TestEventOf(t *testing.T) {
	for status, want := range map[int][2]string{
		0: {"NOT_COMPLETED", ""}, 1: {"NOT_VERIFIED", provider.ResultFailed}, 2: {"VERIFIED", provider.ResultVerified},
		3: {"APPROVED", provider.ResultVerified}, 4: {"PENDING", ""}, 1000: {"REJECTED", provider.ResultFailed}, 7: {"STATUS_7", ""},
	} {
		ev := eventOf("r", status)
		if ev.Status != want[0] || ev.Result != want[1] || ev.Ref != "r" || ev.Key == "" {
			t.Errorf("status %d: %+v, want %v", status, ev, want)
		}
	}
	a, b := eventOf("r", 2), eventOf("r", 2)
	if a.Key != b.Key || a.Key == eventOf("r", 3).Key {
		t.Error("event keys must identify the status")
	}
}

// FuzzParseDeeplink: any url a platform answers is read without a panic,
// and what is accepted is a header-safe token and a well-formed id.
func FuzzParseDeeplink(f *testing.F) {
	f.Add("https://idv.example.com/mobile?authorization=Token%20eyJx&sessionId=abc123")
	f.Add("http://h/mobile?authorization=&sessionId=x")
	f.Add("javascript:alert(1)")
	f.Add("https://h/mobile?authorization=Token%0d%0aX&sessionId=a")
	f.Fuzz(func(t *testing.T, link string) {
		tok, id, ok := parseDeeplink(link)
		if ok && (tok == "" || strings.ContainsAny(tok, "\r\n") || !sessionIDRe.MatchString(id)) {
			t.Fatalf("accepted %q: token %q id %q", link, tok, id)
		}
	})
}

func TestParseDeeplink(t *testing.T) {
	tok, id, ok := parseDeeplink("https://idv.example.com/mobile?authorization=Token%20eyJ.a.b&sessionId=s-1")
	if !ok || tok != "Token eyJ.a.b" || id != "s-1" {
		t.Fatalf("got %q %q %v", tok, id, ok)
	}
	for _, bad := range []string{"", "/mobile?authorization=T&sessionId=s", "ftp://h/mobile?authorization=T&sessionId=s",
		"https://h/mobile?sessionId=s", "https://h/mobile?authorization=T&sessionId=../x", "https://u:p@h/mobile?authorization=T&sessionId=s"} {
		if _, _, ok := parseDeeplink(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}
