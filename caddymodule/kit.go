package caddymodule

// The core side of the provider kit (see provider/kit.go): the routes the
// core serves for kit providers. They call the core's own helpers
// (sessionFromCookie, allowCreate, checkRedirect, bindSession,
// authenticateWebhook, cookieSession), never copies of them.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// kitRoutes gives the kit routes of routes their core handler. Declaring a
// kit route without implementing its interface is a configuration error of
// the provider, reported when the handler provisions.
func (h *Handler) kitRoutes(routes []provider.Route) error {
	for i := range routes {
		rt := &routes[i]
		switch rt.Kind {
		case provider.StartSession, provider.SessionToken, provider.SignedWebhook, provider.UserToken:
		default:
			continue
		}
		if rt.Handle != nil {
			return fmt.Errorf("idv: kit route %s must not have a Handle: the core serves it", rt.Path)
		}
		switch rt.Kind {
		case provider.StartSession:
			st, ok := h.provider.(provider.Starter)
			if !ok {
				return fmt.Errorf("idv: route %s starts sessions but the provider is not a provider.Starter", rt.Path)
			}
			rt.CreatesSession = true // the core's cross-site check applies
			if len(rt.Methods) == 0 {
				rt.Methods = []string{http.MethodGet, http.MethodPost}
			}
			rt.Handle = h.kitStart(st, rt.Path)
		case provider.SessionToken:
			tr, ok := h.provider.(provider.TokenRefresher)
			if !ok {
				return fmt.Errorf("idv: route %s serves tokens but the provider is not a provider.TokenRefresher", rt.Path)
			}
			if len(rt.Methods) == 0 {
				rt.Methods = []string{http.MethodGet}
			}
			rt.Handle = h.kitToken(tr)
		case provider.SignedWebhook:
			wp, ok := h.provider.(provider.WebhookParser)
			if !ok {
				return fmt.Errorf("idv: route %s takes webhooks but the provider is not a provider.WebhookParser", rt.Path)
			}
			if len(rt.Methods) == 0 {
				rt.Methods = []string{http.MethodPost}
			}
			rt.Handle = h.kitWebhook(wp, rt.Path)
			if _, signed := h.provider.(provider.WebhookVerifier); !signed {
				// webhook_auth: checked before the handler as on any Webhook
				// route (credential hidden, no browser checks).
				rt.Kind = provider.Webhook
			}
		case provider.UserToken:
			if err := h.userTokenRoute(rt); err != nil {
				return err
			}
		}
	}
	return nil
}

// startFields is what a start route reads from the query or a JSON body.
type startFields struct {
	UniqueID       *string `json:"uniqueId"`
	ExternalUserID string  `json:"externalUserId"`
	FirstName      string  `json:"firstName"`
	LastName       string  `json:"lastName"`
	Language       string  `json:"language"`
	RedirectURL    string  `json:"redirectionUrl"`
}

// MaxStartField bounds each text field of a start request.
const MaxStartField = 256

var languageRe = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)

// readStart reads and validates a start request. resume is set when the
// caller names a session by uniqueId (even an empty one: that is an error).
func (h *Handler) readStart(r *http.Request) (in provider.StartInput, id string, resume bool, err error) {
	q := r.URL.Query()
	f := startFields{ExternalUserID: q.Get("externalUserId"), FirstName: q.Get("firstName"), LastName: q.Get("lastName"),
		Language: q.Get("language"), RedirectURL: q.Get("redirectionUrl")}
	if q.Has("uniqueId") {
		v := q.Get("uniqueId")
		f.UniqueID = &v
	}
	params := url.Values{}
	for k, v := range q {
		params[k] = v
	}
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return in, "", false, provider.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
		case err != nil:
			return in, "", false, provider.Errorf(http.StatusBadRequest, "could not read the request body")
		}
		var body startFields
		if err := provider.DecodeJSONBytes(raw, &body, false); err != nil {
			return in, "", false, err
		}
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(raw, &fields) // decoded above: an object or empty
		for k, v := range fields {
			var str string
			if json.Unmarshal(v, &str) == nil {
				params.Set(k, str)
			}
		}
		if body.UniqueID != nil {
			f.UniqueID = body.UniqueID
		}
		for _, p := range []struct{ dst, src *string }{{&f.ExternalUserID, &body.ExternalUserID}, {&f.FirstName, &body.FirstName},
			{&f.LastName, &body.LastName}, {&f.Language, &body.Language}, {&f.RedirectURL, &body.RedirectURL}} {
			if *p.src != "" {
				*p.dst = *p.src
			}
		}
	}
	if f.UniqueID != nil {
		return in, *f.UniqueID, true, nil
	}
	for _, c := range []struct{ name, v string }{{"externalUserId", f.ExternalUserID}, {"firstName", f.FirstName}, {"lastName", f.LastName}} {
		if len(c.v) > MaxStartField {
			return in, "", false, provider.Errorf(http.StatusBadRequest, "%s is longer than %d characters", c.name, MaxStartField)
		}
		if strings.IndexFunc(c.v, unicode.IsControl) >= 0 {
			return in, "", false, provider.Errorf(http.StatusBadRequest, "%s must not contain control characters", c.name)
		}
	}
	if f.Language != "" && !languageRe.MatchString(f.Language) {
		return in, "", false, provider.Errorf(http.StatusBadRequest, "language must be a language tag such as en or pt-BR")
	}
	if f.RedirectURL != "" {
		if err := h.checkRedirect(r, f.RedirectURL); err != nil {
			return in, "", false, err
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return provider.StartInput{ExternalUserID: f.ExternalUserID, FirstName: f.FirstName, LastName: f.LastName,
		Language: f.Language, RedirectURL: f.RedirectURL, Origin: scheme + "://" + r.Host, Params: params}, "", false, nil
}

// kitStart serves a StartSession route: the session named by uniqueId, else
// the browser's own (unless ?new=1), else a new one from the provider.
func (h *Handler) kitStart(st provider.Starter, route string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		in, id, resume, err := h.readStart(r)
		if err != nil {
			return err
		}
		var s *session.Session
		switch {
		case resume:
			if s, err = provider.Resume(r.Context(), h.store, h.name, id); err != nil {
				return err
			}
			if !h.ownsSession(r, s) {
				return provider.Errorf(http.StatusForbidden, "the session with that uniqueId belongs to another user")
			}
		case r.URL.Query().Get("new") != "1":
			if c := h.sessionFromCookie(r); c != nil && c.Provider == h.name && h.ownsSession(r, c) {
				s = c
			}
		}
		var startErr error
		if s == nil {
			in.Route = route
			if s, startErr = h.kitCreate(r, st, in); s == nil {
				return startErr
			}
		} else if sr, ok := st.(provider.StartResumer); ok {
			if s, err = h.kitResume(r.Context(), sr, route, s); err != nil {
				h.bindSession(w, r, s)
				return err
			}
		}
		h.bindSession(w, r, s)
		if startErr != nil {
			return startErr
		}
		answer := st.StartAnswer(route, s)
		if answer == nil {
			answer = map[string]any{}
		}
		answer["uniqueId"] = s.UniqueID
		provider.WriteJSON(w, http.StatusOK, answer)
		return nil
	}
}

// kitCreate starts a provider session under the quota and stores it. It
// returns a stored session with an error when the provider session exists
// but a later step of Start failed.
func (h *Handler) kitCreate(r *http.Request, st provider.Starter, in provider.StartInput) (*session.Session, error) {
	if sc, ok := st.(provider.StartChecker); ok {
		if err := sc.CheckStart(in); err != nil {
			return nil, err
		}
	}
	if err := h.allowCreate(r); err != nil {
		return nil, err
	}
	now := h.host.Now()
	in.UniqueID = session.NewID()
	res, err := st.Start(r.Context(), in)
	if res.Ref == "" {
		if err == nil {
			err = upstream.ErrMalformed
		}
		return nil, upstream.ClientError(err)
	}
	expires := now.Add(time.Duration(h.SessionTTL))
	if !res.ExpiresAt.IsZero() && res.ExpiresAt.Before(expires) {
		expires = res.ExpiresAt
	}
	s := &session.Session{UniqueID: in.UniqueID, Provider: h.name, Token: res.Token, Ref: res.Ref, URL: res.URL,
		Meta: res.Meta, CreatedAt: now, ExpiresAt: expires.Truncate(time.Second)}
	// The provider session exists now: store it even if the client has gone.
	if cerr := h.store.Create(context.WithoutCancel(r.Context()), s); cerr != nil {
		return nil, cerr
	}
	if res.Token != "" && !res.TokenExpiresAt.IsZero() {
		h.host.Tokens.Set(tokenKey(s.UniqueID), encodeToken(res.Token, res.TokenExpiresAt), res.TokenExpiresAt)
	}
	h.logger.Info("session started", zap.String("provider", h.name), zap.String("session", session.LogID(s.UniqueID)), zap.String("ref", provider.LogRef(s.Ref)))
	if err != nil {
		return s, upstream.ClientError(err)
	}
	return s, nil
}

// kitResume lets a StartResumer complete a stored session for route, and
// stores what it filled in (URL, Token, Meta) under the session's lock.
func (h *Handler) kitResume(ctx context.Context, sr provider.StartResumer, route string, s *session.Session) (*session.Session, error) {
	c := *s
	c.Meta = maps.Clone(s.Meta)
	changed, err := sr.ResumeStart(ctx, route, &c)
	if err != nil {
		return s, upstream.ClientError(err)
	}
	if !changed {
		return s, nil
	}
	// Only what ResumeStart changed: the stored session may have moved on
	// since s was read (a claim released, a decision recorded).
	ns, err := h.store.Update(context.WithoutCancel(ctx), s.UniqueID, func(st *session.Session) (bool, error) {
		if c.URL != s.URL {
			st.URL = c.URL
		}
		if c.Token != s.Token {
			st.Token = c.Token
		}
		for k, v := range c.Meta {
			if old, had := s.Meta[k]; had && old == v {
				continue
			}
			if st.Meta == nil {
				st.Meta = map[string]string{}
			}
			st.Meta[k] = v
		}
		return true, nil
	})
	if err != nil {
		return s, err
	}
	return ns, nil
}

// ownsSession reports whether r may use s (provider.SessionOwner; true for
// providers that do not bind sessions to users).
func (h *Handler) ownsSession(r *http.Request, s *session.Session) bool {
	o, ok := h.provider.(provider.SessionOwner)
	return !ok || o.OwnsSession(r, s)
}

// tokenKey is the token cache key of a session's browser token; the
// uniqueId is a credential, so only its digest is kept.
func tokenKey(uniqueID string) string {
	sum := sha256.Sum256([]byte("kit session token\x00" + uniqueID))
	return "session-token:" + hex.EncodeToString(sum[:16])
}

// The token cache holds strings: a token and its expiry travel together.
func encodeToken(tok string, exp time.Time) string {
	return exp.UTC().Format(time.RFC3339Nano) + " " + tok
}

func decodeToken(v string) (string, time.Time) {
	ts, tok, _ := strings.Cut(v, " ")
	exp, _ := time.Parse(time.RFC3339Nano, ts)
	return tok, exp
}

// kitToken serves a SessionToken route: a token for the caller's session,
// fetched once for concurrent callers and cached until shortly before it
// expires.
func (h *Handler) kitToken(tr provider.TokenRefresher) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		s, err := h.cookieSession(r)
		if err != nil {
			return err
		}
		if s.Provider != h.name {
			return provider.Errorf(http.StatusUnauthorized, "the session cookie names no live session: %v", session.ErrNotFound)
		}
		if !h.ownsSession(r, s) {
			return provider.Errorf(http.StatusUnauthorized, "the session cookie belongs to another user")
		}
		tok, exp, err := h.cachedToken(r.Context(), tokenKey(s.UniqueID), func(ctx context.Context) (string, time.Time, error) {
			return tr.RefreshToken(ctx, s)
		})
		if err != nil {
			return err
		}
		provider.WriteJSON(w, http.StatusOK, tokenAnswer(tok, exp))
		return nil
	}
}

// kitWebhook serves a SignedWebhook route: authenticate, parse, run the
// provider's effects, record each event once per key (one lookup and one
// locked update per session), notify. The body is limited by the caller.
func (h *Handler) kitWebhook(wp provider.WebhookParser, route string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return provider.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
		case err != nil:
			return provider.Errorf(http.StatusBadRequest, "could not read the request body")
		}
		if v, ok := h.provider.(provider.WebhookVerifier); ok {
			if err := v.VerifyWebhook(r.Header, body); err != nil {
				h.count(provider.CountWebhooks, "rejected")
				if errors.Is(err, provider.ErrNoWebhookSecret) {
					h.logger.Warn("webhook refused: the provider's webhook secret is not configured", zap.String("path", r.URL.Path))
					return provider.Errorf(http.StatusForbidden, "webhooks are disabled: no webhook secret is configured")
				}
				h.logger.Info("webhook refused: bad signature", zap.String("path", r.URL.Path), zap.String("reason", err.Error()))
				return provider.Errorf(http.StatusUnauthorized, "webhook signature is missing or wrong")
			}
			h.count(provider.CountWebhooks, "received")
		}
		evs, err := wp.ParseWebhook(r.Header, body)
		if err != nil {
			var pe *provider.Error
			if errors.As(err, &pe) {
				return pe
			}
			return provider.Errorf(http.StatusBadRequest, "malformed webhook body")
		}
		ctx := context.WithoutCancel(r.Context())
		byRef := map[string][]provider.KitEvent{}
		var refs []string
		for _, ev := range evs {
			if _, ok := byRef[ev.Ref]; !ok {
				refs = append(refs, ev.Ref)
			}
			byRef[ev.Ref] = append(byRef[ev.Ref], ev)
		}
		var answer any
		for _, ref := range refs {
			s, err := h.store.LoadByRef(ctx, ref)
			switch {
			case errors.Is(err, session.ErrNotFound):
				s = nil
			case err != nil:
				return err
			case s.Provider != h.name:
				s = nil // another handler's session (a shared storage_namespace): not ours to change
			}
			evs, err := h.kitEffects(ctx, route, ref, s, byRef[ref], &answer)
			if err != nil {
				return err
			}
			if s == nil {
				// A session started elsewhere (the dashboard, another
				// backend): acknowledged, so the sender does not retry.
				h.logger.Info("webhook for a session with no stored session", zap.String("ref", provider.LogRef(ref)))
				continue
			}
			if len(evs) == 0 {
				continue
			}
			if _, _, err := h.recordKit(ctx, s.UniqueID, evs, true, nil); err != nil {
				return err
			}
		}
		if answer == nil {
			answer = h.kitAnswer(route, body)
		}
		provider.WriteJSON(w, http.StatusOK, answer)
		return nil
	}
}

// metaDecidedAt is the session meta key holding the provider's time of the
// decision the session's result comes from.
const metaDecidedAt = "decidedAt"

// applyKitEvent records ev on s and reports whether s changed. A replayed
// event (same key) changes nothing; an older decision, or a progress event
// once a result is known, is kept in the history only.
func applyKitEvent(s *session.Session, ev provider.KitEvent, now time.Time) bool {
	if ev.Key == "" || s.HasEvent(ev.Key) {
		return false
	}
	s.Events = append(s.Events, session.Event{Key: ev.Key, Status: ev.Status, ReceivedAt: now})
	decidedAt, decided := time.Time{}, false
	if v, ok := s.Meta[metaDecidedAt]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			decidedAt, decided = t, true
		}
	}
	switch {
	case ev.Decision && decided && (ev.At.IsZero() || !ev.At.After(decidedAt)):
		return true // older than the decision held
	case !ev.Decision && s.Result != "":
		return true // progress after a result: history only
	}
	if ev.Status != "" {
		s.Status = ev.Status
	}
	if ev.Score != "" {
		s.Score = ev.Score
	}
	if ev.Decision {
		s.Result = ev.Result
		if !ev.At.IsZero() {
			if s.Meta == nil {
				s.Meta = map[string]string{}
			}
			s.Meta[metaDecidedAt] = ev.At.UTC().Format(time.RFC3339Nano)
		}
	} else if ev.Result != "" {
		s.Result = ev.Result
	}
	return true
}

// recordKit applies evs to the session uniqueID under the store's lock and
// wakes its event streams when it changed. Replayed events are counted as
// deduplicated webhooks when fromWebhook. With create, the session is
// stored first (under the same lock) when there is none.
func (h *Handler) recordKit(ctx context.Context, uniqueID string, evs []provider.KitEvent, fromWebhook bool, create *session.Session) (*session.Session, bool, error) {
	dups := 0
	update := func(fn func(*session.Session) (bool, error)) (*session.Session, error) {
		if create != nil {
			return h.store.CreateOrUpdate(ctx, create, fn)
		}
		return h.store.Update(ctx, uniqueID, fn)
	}
	s, err := update(func(s *session.Session) (bool, error) {
		dups = 0
		changed := false
		now := time.Now().UTC()
		for _, ev := range evs {
			if applyKitEvent(s, ev, now) {
				changed = true
			} else {
				dups++
			}
		}
		return changed, nil
	})
	if err != nil {
		return nil, false, err
	}
	if fromWebhook {
		for range dups {
			h.count(provider.CountWebhooks, "deduplicated")
		}
	}
	if dups < len(evs) {
		notify(h.namespace, s.UniqueID)
		return s, true, nil
	}
	return s, false, nil
}

// refreshKit is the refresh of an EventRefresher provider: the same rules
// as its webhooks. The caller has rate-limited it.
func (h *Handler) refreshKit(ctx context.Context, s *session.Session, er provider.EventRefresher) *session.Session {
	ev, err := er.RefreshEvent(ctx, s)
	if err != nil {
		h.logger.Warn("refreshing session status failed", zap.String("session", session.LogID(s.UniqueID)), zap.String("error", redactErr(err)))
		return s
	}
	if ev.Key == "" {
		return s
	}
	ev.Ref = s.Ref
	if ns, _, err := h.recordKit(ctx, s.UniqueID, []provider.KitEvent{ev}, false, nil); err == nil {
		return ns
	}
	return s
}
