package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

type suffixKey struct{}

// WithSuffix stores the escaped path below a passthrough route.
func WithSuffix(ctx context.Context, suffix string) context.Context {
	return context.WithValue(ctx, suffixKey{}, suffix)
}

// IsPassthrough reports whether r was matched to a passthrough route.
func IsPassthrough(r *http.Request) bool {
	_, ok := r.Context().Value(suffixKey{}).(string)
	return ok
}

// Suffix returns the escaped path below the matched passthrough route.
func Suffix(r *http.Request) string {
	s, _ := r.Context().Value(suffixKey{}).(string)
	return s
}

// DecodeJSON decodes the request body into v. An empty body is an error
// only when required. Errors are *Error: 413 past the body limit, 400 for
// anything that is not the expected JSON.
//
// The Content-Type is not checked: Incode's own frontends post
// JSON.stringify(...) with no headers, which browsers send as
// text/plain;charset=UTF-8, and its Node backend parses any type. Refusing
// cross-site browser requests is the core's job (it does not rely on the
// content type, since a text/plain POST needs no preflight).
//
// Invalid text is refused before decoding, because encoding/json silently
// replaces invalid UTF-8 (and lone surrogate escapes) with U+FFFD: a string
// with invalid UTF-8, a NUL (raw or \u0000) or a lone surrogate is a 400
// naming the field.
func DecodeJSON(r *http.Request, v any, required bool) error {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	if err != nil {
		return Errorf(http.StatusBadRequest, "could not read the request body")
	}
	return DecodeJSONBytes(b, v, required)
}

// DecodeJSONBytes is DecodeJSON for a body already read.
func DecodeJSONBytes(b []byte, v any, required bool) error {
	if len(bytes.TrimSpace(b)) == 0 {
		if required {
			return Errorf(http.StatusBadRequest, "a JSON body is required")
		}
		return nil
	}
	if err := CheckJSONText(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return Errorf(http.StatusBadRequest, "malformed JSON: the body must be a JSON object")
		}
		if errors.As(err, &te) {
			return Errorf(http.StatusBadRequest, "malformed JSON: field %q must be a %s", te.Field, te.Type.String())
		}
		return Errorf(http.StatusBadRequest, "malformed JSON body")
	}
	return nil
}

// CheckJSONText returns a 400 *Error naming the field when a string of the
// JSON document b (a key or a value) holds invalid UTF-8, a NUL character
// (raw or escaped) or an unpaired surrogate escape. Malformed JSON is left
// to the decoder.
func CheckJSONText(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object  bool
		wantKey bool
		key     string
	}
	var stack []frame
	prev := int64(0)
	for {
		tok, err := dec.Token()
		if err != nil {
			if !utf8.Valid(b) { // malformed and invalid: say the latter
				return Errorf(http.StatusBadRequest, "the body is not valid UTF-8")
			}
			if bytes.IndexByte(b, 0) >= 0 { // a raw NUL ends the decoder's reading
				return Errorf(http.StatusBadRequest, "the body contains a NUL character")
			}
			return nil // io.EOF, or malformed JSON the decoder reports
		}
		end := dec.InputOffset()
		raw := b[prev:end]
		prev = end
		field := "" // the field this token is, or is the value of
		for _, f := range stack {
			if f.object && f.key != "" {
				if field != "" {
					field += "."
				}
				field += f.key
			}
		}
		isKey := false
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			isKey = true
		}
		if s, ok := tok.(string); ok {
			if problem := badText(raw); problem != "" {
				if isKey {
					if field != "" {
						s = field + "." + s
					}
					return Errorf(http.StatusBadRequest, "field name %q %s", strings.ToValidUTF8(s, "\uFFFD"), problem)
				}
				if field == "" {
					return Errorf(http.StatusBadRequest, "the body %s", problem)
				}
				return Errorf(http.StatusBadRequest, "field %q %s", strings.ToValidUTF8(field, "\uFFFD"), problem)
			}
		}
		// Keep track of where we are.
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, frame{object: true, wantKey: true})
				continue
			case '[':
				stack = append(stack, frame{})
				continue
			default: // a closed container is the value of its parent's key
				stack = stack[:len(stack)-1]
				if n := len(stack); n > 0 && stack[n-1].object {
					stack[n-1].key, stack[n-1].wantKey = "", true
				}
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			top := &stack[n-1]
			if isKey {
				top.key, _ = tok.(string)
				top.wantKey = false
			} else {
				top.key, top.wantKey = "", true
			}
		}
	}
}

// badText inspects the raw bytes of one JSON string token (with whatever
// separators precede it) and describes what is wrong with its text.
func badText(raw []byte) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return "contains a NUL character"
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		i++ // the escaped character: an escaped backslash is skipped whole
		if raw[i] != 'u' || i+4 >= len(raw) {
			continue
		}
		r := hex4(raw[i+1 : i+5])
		i += 4
		switch {
		case r == 0:
			return "contains a NUL character"
		case r >= 0xDC00 && r <= 0xDFFF:
			return "contains an unpaired surrogate"
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo := hex4(raw[i+3 : i+7]); lo >= 0xDC00 && lo <= 0xDFFF {
					i += 6
					continue
				}
			}
			return "contains an unpaired surrogate"
		}
	}
	return ""
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// Resume loads the session a client names by uniqueId for the provider
// called name. An id that is malformed, unknown, expired or another
// provider's is the client's mistake: a 400 that says which.
func Resume(ctx context.Context, sessions session.Store, name, id string) (*session.Session, error) {
	s, err := sessions.Load(ctx, id)
	if err == nil && s.Provider != name {
		err = session.ErrNotFound
	}
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, session.ErrMalformedID), errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired):
		return nil, Errorf(http.StatusBadRequest, "%v", err)
	}
	return nil, err
}

// RequireString returns a 400 naming field when v is empty.
func RequireString(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return Errorf(http.StatusBadRequest, "%s is required", field)
	}
	return nil
}
