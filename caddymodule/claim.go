package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// claimMeta prefixes the claims kept in a session's Meta.
const claimMeta = "claim:"

// claim implements provider.Host.Claim: the one-time right to a webhook's
// side effect, taken under the storage lock so that concurrent deliveries
// (in this process or another instance) perform it once. The claim lives
// on the session whose provider reference is ref, so it is swept with it;
// for an interview the sidecar never stored, in a small record of its own.
func (h *Handler) claim(ctx context.Context, ref, name string, ttl time.Duration) (bool, func(), error) {
	ctx = context.WithoutCancel(ctx)
	now := time.Now().UTC()
	key := claimMeta + name
	if s, err := h.store.LoadByRef(ctx, ref); err == nil {
		ok := false
		_, err := h.store.Update(ctx, s.UniqueID, func(s *session.Session) (bool, error) {
			if until, err := time.Parse(time.RFC3339Nano, s.Meta[key]); err == nil && now.Before(until) {
				return false, nil
			}
			if s.Meta == nil {
				s.Meta = map[string]string{}
			}
			s.Meta[key] = now.Add(ttl).Format(time.RFC3339Nano)
			ok = true
			return true, nil
		})
		if err != nil || !ok {
			return false, nil, err
		}
		return true, func() {
			_, _ = h.store.Update(ctx, s.UniqueID, func(s *session.Session) (bool, error) {
				_, had := s.Meta[key]
				delete(s.Meta, key)
				return had, nil
			})
		}, nil
	} else if !errors.Is(err, session.ErrNotFound) {
		return false, nil, err
	}
	sum := sha256.Sum256([]byte(ref + "\x00" + name))
	id := hex.EncodeToString(sum[:16])
	rec := path.Join("idv", h.namespace, "claims", id)
	lock := path.Join("idv", h.namespace, "lock", "claim-"+id)
	st := h.storage
	if err := st.Lock(ctx, lock); err != nil {
		return false, nil, err
	}
	defer func() { _ = st.Unlock(ctx, lock) }()
	b, err := st.Load(ctx, rec)
	switch {
	case err == nil:
		if until, perr := time.Parse(time.RFC3339Nano, string(b)); perr == nil && now.Before(until) {
			return false, nil, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, nil, err
	}
	if err := st.Store(ctx, rec, []byte(now.Add(ttl).Format(time.RFC3339Nano))); err != nil {
		return false, nil, err
	}
	return true, func() {
		if st.Lock(ctx, lock) == nil {
			_ = st.Delete(ctx, rec)
			_ = st.Unlock(ctx, lock)
		}
	}, nil
}

// sweepClaims deletes the expired claim records of references no session
// holds (claims on a session go with it): an expired claim refuses nothing,
// so deleting it loses nothing. It returns how many it deleted.
func sweepClaims(ctx context.Context, st certmagic.Storage, namespace string, now time.Time) (int, error) {
	keys, err := st.List(ctx, path.Join("idv", namespace, "claims"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, key := range keys {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if !claimExpired(ctx, st, key, now) {
			continue
		}
		lock := path.Join("idv", namespace, "lock", "claim-"+path.Base(key))
		if err := st.Lock(ctx, lock); err != nil {
			return n, err
		}
		// Again under the lock: a delivery may have claimed it anew.
		if claimExpired(ctx, st, key, now) && st.Delete(ctx, key) == nil {
			n++
		}
		_ = st.Unlock(ctx, lock)
	}
	return n, nil
}

func claimExpired(ctx context.Context, st certmagic.Storage, key string, now time.Time) bool {
	b, err := st.Load(ctx, key)
	if err != nil {
		return false
	}
	until, err := time.Parse(time.RFC3339Nano, string(b))
	return err != nil || !now.Before(until)
}
