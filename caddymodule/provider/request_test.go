package provider

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func decodeStatus(t *testing.T, body, contentType string, v any) (int, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	err := DecodeJSON(r, v, true)
	if err == nil {
		return 0, ""
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("DecodeJSON returned %T, want *Error", err)
	}
	return pe.Status, pe.Msg
}

// TestDecodeJSONAnyContentType: Incode's frontends post JSON.stringify(...)
// without headers, so browsers send text/plain;charset=UTF-8
// (javascript-samples face-login/main.js, onboarding-extended-javascript
// session.js); the Node sample parses any type (express.raw({type: '*/*'})).
func TestDecodeJSONAnyContentType(t *testing.T) {
	for _, ct := range []string{"", "application/json", "text/plain;charset=UTF-8", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"} {
		var in struct {
			Token string `json:"token"`
		}
		if status, msg := decodeStatus(t, `{"token":"abc"}`, ct, &in); status != 0 || in.Token != "abc" {
			t.Errorf("Content-Type %q: %d %s, token %q", ct, status, msg, in.Token)
		}
	}
	var in map[string]any
	if status, msg := decodeStatus(t, `token=abc`, "application/x-www-form-urlencoded", &in); status != 400 || !strings.Contains(msg, "malformed JSON") {
		t.Errorf("a form body: %d %q, want 400 malformed JSON", status, msg)
	}
}

func TestDecodeJSONRefusesInvalidText(t *testing.T) {
	cases := []struct{ body, msg string }{
		{"{\"token\":\"a\xffb\"}", `field "token" is not valid UTF-8`},
		{"{\"token\":\"a\\u0000b\"}", `field "token" contains a NUL character`},
		{"{\"a\":{\"b\":[\"ok\",\"x\\u0000\"]}}", `field "a.b" contains a NUL character`},
		{"{\"a\":{\"b\":1},\"c\":\"\\ud800\"}", `field "c" contains an unpaired surrogate`},
		{"{\"c\":\"\\udc00x\"}", `field "c" contains an unpaired surrogate`},
		{"{\"k\xfe\":\"v\"}", `field name`},
		{"{\"a\":[{\"b\":\"1\"},{\"c\":\"\xc3\"}]}", `field "a.c" is not valid UTF-8`},
		{"{\"x\":1,\"y\":\"\xff", "not valid UTF-8"},
	}
	for _, tc := range cases {
		var v map[string]any
		status, msg := decodeStatus(t, tc.body, "text/plain;charset=UTF-8", &v)
		if status != 400 || !strings.Contains(msg, tc.msg) {
			t.Errorf("%q: %d %q, want 400 containing %q", tc.body, status, msg, tc.msg)
		}
	}
	// Valid text, including escapes that look close, is accepted as is.
	for _, ok := range []string{`{"a":"\\u0000"}`, `{"a":"\ud83d\ude00"}`, `{"a":"é\u00e9"}`, `{"a":"\ufffd"}`} {
		var v map[string]any
		if status, msg := decodeStatus(t, ok, "", &v); status != 0 {
			t.Errorf("%s: %d %s", ok, status, msg)
		}
	}
}

// FuzzDecodeJSON: whatever the body, DecodeJSON never panics, and what it
// accepts came from valid UTF-8 and decodes to strings without NUL or a
// replacement character that was not in the input.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"token":"abc"}`, "{\"a\":\"\xff\"}", `{"a":"\u0000"}`, `{"a":["\ud800"]}`, `[]`, `{"a":{"b":"c"}}`, ``, `{"a":"\\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v any
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(string(body)))
		if DecodeJSON(r, &v, false) != nil {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		hadFFFD := strings.Contains(string(body), "\ufffd") || strings.Contains(strings.ToLower(string(body)), `\ufffd`)
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if strings.ContainsRune(x, 0) {
					t.Fatalf("accepted a NUL: %q", body)
				}
				if !hadFFFD && strings.ContainsRune(x, utf8.RuneError) {
					t.Fatalf("accepted text that decoded to U+FFFD: %q", body)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
	})
}
