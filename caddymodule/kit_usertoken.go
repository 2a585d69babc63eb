package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// userTokenRoute makes rt, a UserToken route, a TokenServer route served
// by the core (the rules of token routes apply: query checks, body limit,
// cross-site refusal).
func (h *Handler) userTokenRoute(rt *provider.Route) error {
	ut, ok := h.provider.(provider.UserTokener)
	if !ok {
		return fmt.Errorf("idv: route %s serves user tokens but the provider is not a provider.UserTokener", rt.Path)
	}
	rt.Kind, rt.CreatesSession = provider.TokenServer, true
	if len(rt.Methods) == 0 {
		rt.Methods = []string{http.MethodGet}
	}
	// The token cache is shared by handlers with the same storage namespace
	// and credentials: the account (the API's address, say) names the key too.
	account := ""
	if id, ok := h.provider.(provider.Identifier); ok {
		account = id.Identity()
	}
	rt.Handle = h.kitUserToken(ut, account)
	return nil
}

// userTokenKey is the token cache key of an account's user's token.
func userTokenKey(account, user string) string {
	sum := sha256.Sum256([]byte("kit user token\x00" + account + "\x00" + user))
	return "user-token:" + hex.EncodeToString(sum[:16])
}

// kitUserToken serves a UserToken route.
func (h *Handler) kitUserToken(ut provider.UserTokener, account string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		user, err := ut.TokenUser(r)
		if err != nil {
			return err
		}
		// One fetch per user however many requests wait for it; the key
		// never mixes users, so no user gets another's token.
		tok, exp, err := h.cachedToken(r.Context(), userTokenKey(account, user), func(ctx context.Context) (string, time.Time, error) {
			if err := h.allowCreate(r); err != nil {
				return "", time.Time{}, err
			}
			return ut.UserToken(ctx, user)
		})
		if err != nil {
			return err
		}
		answer := tokenAnswer(tok, exp)
		if a, ok := ut.(provider.UserTokenAnswerer); ok {
			a.UserTokenAnswer(exp, answer)
		}
		provider.WriteJSON(w, http.StatusOK, answer)
		return nil
	}
}

// tokenAnswer is the answer of the kit's token routes.
func tokenAnswer(tok string, exp time.Time) map[string]any {
	answer := map[string]any{"token": tok}
	if !exp.IsZero() {
		answer["expiresAt"] = exp.UTC().Format(time.RFC3339)
	}
	return answer
}

// cachedToken is the token cached under key, from fetch when there is none
// (one fetch for concurrent callers); errors are the client's answer.
func (h *Handler) cachedToken(ctx context.Context, key string, fetch func(context.Context) (string, time.Time, error)) (string, time.Time, error) {
	v, err := h.host.Tokens.Get(ctx, key, func(ctx context.Context) (string, time.Time, error) {
		tok, exp, err := fetch(ctx)
		if err == nil && tok == "" {
			err = upstream.ErrMalformed
		}
		return encodeToken(tok, exp), exp, err
	})
	if err != nil {
		return "", time.Time{}, upstream.ClientError(err)
	}
	tok, exp := decodeToken(v)
	return tok, exp, nil
}
