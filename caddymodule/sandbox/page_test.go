package sandbox

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReturnURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8080/?provider=regula&returned=1": "http://localhost:8080/?provider=regula&returned=1",
		"https://shop.example/verify":                       "https://shop.example/verify",
		"":                                                  "",
		"javascript:alert(1)":                               "",
		"data:text/html,hi":                                 "",
		"//evil.example/":                                   "",
		"/relative":                                         "",
		"http://user:pw@example.com/":                       "",
		"http://example.com/\r\nSet-Cookie: x=1":            "",
		"http:///no-host":                                   "",
	} {
		got := ""
		if u := ReturnURL(in); u != nil {
			got = u.String()
		}
		if got != want {
			t.Errorf("ReturnURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzReturnURL(f *testing.F) {
	for _, s := range []string{"http://localhost:8080/", "javascript:alert(1)", "https://a.example/x?y=1#z", "http://u@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := ReturnURL(s)
		if u == nil {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			t.Fatalf("ReturnURL(%q) accepted %q", s, u)
		}
	})
}

func TestWriteNotice(t *testing.T) {
	w := httptest.NewRecorder()
	WriteNotice(w, http.StatusOK, Notice{Provider: "Regula", ID: "done", Message: "Verification <finished>.",
		Return: "http://localhost:8080/?a=1&b=2"})
	body := w.Body.String()
	for _, want := range []string{
		`<title>Regula sandbox</title>`, `id="sandbox-badge"`, `name="viewport"`,
		`<p id="done" class="notice" role="status">Verification &lt;finished&gt;.</p>`,
		`<a class="button" id="return" href="http://localhost:8080/?a=1&amp;b=2">Back to localhost:8080</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s:\n%s", want, body)
		}
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}

	w = httptest.NewRecorder()
	WriteNotice(w, http.StatusNotFound, Notice{Provider: "Incode", ID: "error", Error: true, Message: "Unknown.", Return: "javascript:alert(1)"})
	body = w.Body.String()
	if w.Code != http.StatusNotFound || strings.Contains(body, "javascript") || strings.Contains(body, `id="return"`) ||
		!strings.Contains(body, `class="notice error" role="alert"`) || !strings.Contains(body, "You can close this page.") {
		t.Errorf("an error notice with an unsafe return link: %d\n%s", w.Code, body)
	}
}

func TestPageLang(t *testing.T) {
	p := NewPage(`<p id="x">{{.Data}}</p>`)
	for lang, want := range map[string]string{"": `<html lang="en">`, "pt-BR": `<html lang="pt-BR">`} {
		w := httptest.NewRecorder()
		RenderPage(w, http.StatusOK, p, PageData{Provider: "Incode", Lang: lang, Data: "hi"})
		if body := w.Body.String(); !strings.Contains(body, want) || !strings.Contains(body, `<p id="x">hi</p>`) {
			t.Errorf("Lang %q: want %s and the body:\n%s", lang, want, body)
		}
	}
}
