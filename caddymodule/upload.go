package caddymodule

import (
	"net/http"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// limitUpload refuses a passthrough request whose declared body exceeds
// max_upload before anything is sent to the provider, and cuts a chunked
// body when it crosses the limit (the passthrough then answers 413 and the
// provider sees an aborted request). Bodies are streamed, never buffered:
// the limit bounds what one browser can push through the provider's quota,
// not memory.
func (h *Handler) limitUpload(w http.ResponseWriter, r *http.Request) error {
	limit := h.MaxUpload
	if limit <= 0 {
		limit = DefaultMaxUpload
	}
	if r.ContentLength > limit {
		return provider.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than max_upload (%d bytes)", limit)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	return nil
}
