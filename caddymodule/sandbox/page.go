package sandbox

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// The emulators' hosted pages (the stand-ins for a provider's onboarding)
// share one shell: a stylesheet that reads on a phone and in dark mode, and a
// "sandbox" badge, so nobody mistakes them for the provider's real pages.

// pageCSS is the shared stylesheet, inlined so a page is one response.
const pageCSS = `:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;
--accent:#0b57d0;--accent-fg:#fff;--ok:#116329;--ok-bg:#dafbe1;--bad:#a40e26;--bad-bg:#ffebe9;--sb:#8a4600;--sb-bg:#fff1e5}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;
--accent:#4c8dff;--accent-fg:#0d1117;--ok:#7ee2a8;--ok-bg:#0f3d24;--bad:#ffa198;--bad-bg:#4a1419;--sb:#ffb77c;--sb-bg:#3d1f00}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:32rem;margin:2.5rem auto;padding:1.5rem 1.75rem;background:var(--card);border:1px solid var(--line);border-radius:.75rem}
header{display:flex;align-items:center;gap:.6rem;flex-wrap:wrap;margin-bottom:.5rem}
h1{margin:0;font-size:1.4rem}
.badge{display:inline-block;padding:.05rem .55rem;border-radius:1rem;font-size:.8rem;font-weight:700;
letter-spacing:.03em;text-transform:uppercase;background:var(--sb-bg);color:var(--sb);border:1px solid currentColor}
p{margin:.6rem 0}.muted{color:var(--muted);font-size:.92rem}
code{font-size:.88em;word-break:break-all}
fieldset{border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0 0}
legend{padding:0 .3rem;font-weight:600}
label{display:flex;gap:.6rem;align-items:center;padding:.55rem .2rem;cursor:pointer}
input[type=radio]{width:1.15rem;height:1.15rem;margin:0;accent-color:var(--accent)}
button,.button{display:inline-block;font:inherit;font-weight:600;padding:.65rem 1.3rem;margin-top:1rem;border:0;border-radius:.5rem;
background:var(--accent);color:var(--accent-fg);cursor:pointer;text-decoration:none}
button:focus-visible,.button:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
.notice{padding:.6rem .8rem;border-radius:.5rem;background:var(--ok-bg);color:var(--ok)}
.notice.error{background:var(--bad-bg);color:var(--bad)}
a{color:var(--accent)}
@media (max-width:36rem){main{margin:0;border-radius:0;border-width:0 0 1px;padding:1.25rem 1rem}button,.button{width:100%;text-align:center}}`

// shell wraps a page's "body" template.
const shell = `<!doctype html>
<html lang="{{with .Lang}}{{.}}{{else}}en{{end}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,">
<title>{{.Provider}} sandbox{{with .Title}}: {{.}}{{end}}</title><style>` + pageCSS + `</style></head>
<body><main>
<header><h1>{{.Provider}}</h1><span class="badge" id="sandbox-badge" title="An offline emulator, not the provider">sandbox</span></header>
{{template "body" .}}
</main></body></html>`

// NewPage parses body, a template that defines the page's content, inside
// the shared shell. The data it is executed with must be a PageData (its
// Data field is the emulator's own).
func NewPage(body string) *template.Template {
	return template.Must(template.Must(template.New("page").Parse(shell)).New("body").Parse(body)).Lookup("page")
}

// PageData is what a page built by NewPage is executed with.
type PageData struct {
	// Provider names the emulated provider in the title and heading.
	Provider string
	// Title is the page's subject ("verification").
	Title string
	// Lang is the page's language tag. Default: en.
	Lang string
	// Data is the emulator's own.
	Data any
}

// RenderPage writes a page built by NewPage.
func RenderPage(w http.ResponseWriter, status int, t *template.Template, d PageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = t.Execute(w, d)
}

var noticePage = NewPage(`{{with .Data}}<p id="{{.ID}}" class="notice{{if .Error}} error{{end}}" role="{{if .Error}}alert{{else}}status{{end}}">{{.Message}}</p>
{{if .Return}}<p><a class="button" id="return" href="{{.Return}}">Back to {{.ReturnHost}}</a></p>
{{else}}<p class="muted">You can close this page.</p>{{end}}{{end}}`)

// Notice is a short page: a message, and a way back when one is known.
type Notice struct {
	// Provider names the emulated provider.
	Provider string
	// ID is the message element's id ("done", "error").
	ID string
	// Message is the text shown.
	Message string
	// Error styles the message as a failure.
	Error bool
	// Return, when an absolute http(s) URL, is offered as a link back to
	// the site the person came from; anything else is ignored.
	Return string
}

// WriteNotice writes n as a styled page with the given status.
func WriteNotice(w http.ResponseWriter, status int, n Notice) {
	data := map[string]any{"ID": n.ID, "Message": n.Message, "Error": n.Error}
	if u := ReturnURL(n.Return); u != nil {
		data["Return"], data["ReturnHost"] = u.String(), u.Host
	}
	RenderPage(w, status, noticePage, PageData{Provider: n.Provider, Data: data})
}

// ReturnURL parses a link back to the site the person came from: an
// absolute http or https URL without user info, or nil.
func ReturnURL(s string) *url.URL {
	if s == "" || len(s) > 2048 || strings.ContainsAny(s, "\r\n") {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil
	}
	return u
}
