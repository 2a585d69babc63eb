package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// CreateOrUpdate is Update for a session that may not exist yet: under the
// same lock, it stores fresh (indexing its Ref) when no session has
// fresh.UniqueID, then applies fn, and stores the result in one write.
// Concurrent first deliveries of one provider record (with an id derived
// from it) therefore all land: none overwrites another's change.
func (st *StorageStore) CreateOrUpdate(ctx context.Context, fresh *Session, fn func(*Session) (changed bool, err error)) (*Session, error) {
	if !ValidID(fresh.UniqueID) {
		return nil, ErrMalformedID
	}
	if err := st.init(); err != nil {
		return nil, err
	}
	// apply reads the stored JSON b (nil: none) and returns the session to
	// write, or nil when nothing changed.
	apply := func(b []byte) (out, write, old *Session, err error) {
		var s Session
		created := b == nil
		if created {
			s = *fresh // fn may run again (a failed batch): fresh stays as given
			s.Meta, s.Events = maps.Clone(fresh.Meta), slices.Clone(fresh.Events)
			if s.CreatedAt.IsZero() {
				s.CreatedAt = st.now()
			}
		} else if err := json.Unmarshal(b, &s); err != nil {
			return nil, nil, nil, fmt.Errorf("decoding stored session: %w", err)
		} else {
			prev := s
			old = &prev
		}
		changed, err := fn(&s)
		if err != nil || !(changed || created) {
			return &s, nil, nil, err
		}
		s.UpdatedAt = st.now()
		return &s, &s, old, nil
	}
	if st.db != nil {
		var out *Session
		var fnErr error
		err := st.commit(func(tx *bolt.Tx) error {
			out, fnErr = nil, nil // a batch may run this again
			b, err := st.boltLoadRaw(ctx, tx, fresh.UniqueID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				out, fnErr = nil, err
				return nil
			}
			var write *Session
			out, write, _, fnErr = apply(b)
			if write == nil {
				return nil
			}
			nb, err := json.Marshal(write)
			if err != nil {
				fnErr = err
				return nil
			}
			return st.boltPut(tx, write, nb)
		})
		if err != nil {
			return nil, unavailable("updating session", err)
		}
		return out, fnErr
	}
	unlock, err := st.lock(ctx, fresh.UniqueID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	b, err := st.fileLoadRaw(ctx, fresh.UniqueID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	out, write, old, err := apply(b)
	if write == nil {
		return out, err
	}
	nb, err := json.Marshal(write)
	if err != nil {
		return nil, err
	}
	keys, values := []string{st.sessionKey(write.UniqueID)}, [][]byte{nb}
	if old == nil && write.Ref != "" {
		keys, values = append(keys, st.refKey(write.Ref)), append(values, []byte(write.UniqueID))
	}
	return out, st.put(ctx, write, keys, values)
}

// lock takes the storage lock of the session id (storages other than the
// bbolt database, whose writers are serialised).
func (st *StorageStore) lock(ctx context.Context, id string) (unlock func(), err error) {
	lockName := path.Join("idv", st.Namespace, "lock", id)
	if err := st.Storage.Lock(ctx, lockName); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, unavailable("locking session", err)
	}
	return func() { _ = st.Storage.Unlock(context.WithoutCancel(ctx), lockName) }, nil
}
