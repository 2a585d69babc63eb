package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error with the HTTP status the client should see. Handlers
// return it; the core writes it as {"success": false, "error": Msg}.
type Error struct {
	Status int
	Msg    string
	// RetryAfter, when set, is sent as a Retry-After header (429, 503).
	RetryAfter time.Duration
	// Err is the cause, for logs only: it never reaches the client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Status != 0 {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	if e.Status == 0 { // a configuration error: no HTTP status to show
		return e.Msg
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error whose message is shown to the client.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"success":false,"error":"could not encode the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes err as the JSON error body every route uses. Errors that
// are not *Error become a 500 with a generic message, so internal details
// (which may include upstream bodies) never reach the client.
func WriteError(w http.ResponseWriter, err error) *Error {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Status: http.StatusInternalServerError, Msg: "internal error", Err: err}
	}
	if pe.RetryAfter > 0 {
		secs := int((pe.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	WriteJSON(w, pe.Status, map[string]any{"success": false, "error": pe.Msg})
	return pe
}
