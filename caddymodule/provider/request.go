package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

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
func DecodeJSON(r *http.Request, v any, required bool) error {
	b, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
	}
	if err != nil {
		return Errorf(http.StatusBadRequest, "could not read the request body")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if required {
			return Errorf(http.StatusBadRequest, "a JSON body is required")
		}
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return Errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
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
