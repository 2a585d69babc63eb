// Package session stores verification sessions in Caddy's configured storage
// (certmagic.Storage), so they survive restarts and every instance sharing the
// storage (a file system, Redis, ...) sees the same sessions.
//
// Every read is a direct key lookup: a session by its uniqueId, or by the
// provider's reference (interviewId, sessionId) through a small index record.
// Nothing scans storage, so lookups do not slow down as sessions accumulate.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/google/uuid"
)

// Errors returned by the store. A uniqueId given explicitly that is unknown,
// expired or malformed is the client's mistake (400); a session cookie that
// names no live session means the caller has no session (401).
var (
	ErrMalformedID = errors.New("uniqueId is not a valid UUID")
	ErrNotFound    = errors.New("no session with that uniqueId")
	ErrExpired     = errors.New("the session has expired")
)

// Event is one provider notification recorded on a session.
type Event struct {
	// Key identifies the delivery for deduplication (a retried delivery of
	// the same notification has the same key).
	Key        string    `json:"key"`
	Status     string    `json:"status"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Session is one verification session. Token is the provider credential of
// this session (Incode session token, Regula ephemeral token): it is stored
// here and handed only to the browser that owns the session.
type Session struct {
	UniqueID string `json:"uniqueId"`
	Provider string `json:"provider"`
	Token    string `json:"token,omitempty"`
	Ref      string `json:"ref,omitempty"`
	URL      string `json:"url,omitempty"`
	Status   string `json:"status,omitempty"`
	Score    string `json:"score,omitempty"`
	// Result is the provider-neutral outcome: "verified", "failed" or empty
	// while the verification is in progress.
	Result    string            `json:"result,omitempty"`
	Events    []Event           `json:"events,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	ExpiresAt time.Time         `json:"expiresAt"`
}

// Expired reports whether the session is past its expiry at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// HasEvent reports whether an event with key was already recorded.
func (s *Session) HasEvent(key string) bool {
	for _, e := range s.Events {
		if e.Key == key {
			return true
		}
	}
	return false
}

// Store is what handlers use; tests can supply their own.
type Store interface {
	// Create stores a new session and indexes its Ref.
	Create(ctx context.Context, s *Session) error
	// Load returns the session with the given uniqueId; it validates the id
	// before touching storage and refuses expired sessions (ErrExpired).
	Load(ctx context.Context, uniqueID string) (*Session, error)
	// LoadByRef returns the session whose provider reference is ref,
	// expired or not (webhooks may arrive late).
	LoadByRef(ctx context.Context, ref string) (*Session, error)
	// Update applies fn to the stored session under a storage lock and saves
	// it when fn reports a change.
	Update(ctx context.Context, uniqueID string, fn func(*Session) (changed bool, err error)) (*Session, error)
}

// LogID is what logs say of a uniqueId: a short digest. The id itself
// resumes the session, so it is a credential and never logged.
func LogID(id string) string {
	sum := sha256.Sum256([]byte("caddy-idv session\x00" + id))
	return hex.EncodeToString(sum[:6])
}

// NewID returns a random UUIDv4.
func NewID() string { return uuid.NewString() }

// ValidID reports whether id is a canonical UUIDv4 as NewID makes them; only
// such ids reach storage keys.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	u, err := uuid.Parse(id)
	return err == nil && u.Version() == 4 && u.String() == id
}

// StorageStore keeps sessions in a certmagic.Storage under Namespace.
type StorageStore struct {
	Storage   certmagic.Storage
	Namespace string // e.g. "incode" or a hash of the handler's prefix
	Now       func() time.Time
}

func (st *StorageStore) now() time.Time {
	if st.Now != nil {
		return st.Now().UTC()
	}
	return time.Now().UTC()
}

func (st *StorageStore) sessionKey(id string) string {
	return path.Join("idv", st.Namespace, "sessions", id+".json")
}

// refKey hashes the reference so that whatever a provider or webhook sends,
// it cannot shape the storage key.
func (st *StorageStore) refKey(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return path.Join("idv", st.Namespace, "refs", hex.EncodeToString(sum[:16]))
}

// Create implements Store.
func (st *StorageStore) Create(ctx context.Context, s *Session) error {
	if !ValidID(s.UniqueID) {
		return ErrMalformedID
	}
	now := st.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	if err := st.save(ctx, s); err != nil {
		return err
	}
	if s.Ref != "" {
		if err := st.Storage.Store(ctx, st.refKey(s.Ref), []byte(s.UniqueID)); err != nil {
			return fmt.Errorf("storing session index: %w", err)
		}
	}
	return nil
}

func (st *StorageStore) save(ctx context.Context, s *Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := st.Storage.Store(ctx, st.sessionKey(s.UniqueID), b); err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	return nil
}

func (st *StorageStore) load(ctx context.Context, id string) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrMalformedID
	}
	b, err := st.Storage.Load(ctx, st.sessionKey(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("loading session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding stored session: %w", err)
	}
	return &s, nil
}

// Load implements Store.
func (st *StorageStore) Load(ctx context.Context, id string) (*Session, error) {
	s, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.Expired(st.now()) {
		return s, ErrExpired
	}
	return s, nil
}

// LoadByRef implements Store.
func (st *StorageStore) LoadByRef(ctx context.Context, ref string) (*Session, error) {
	if ref == "" {
		return nil, ErrNotFound
	}
	b, err := st.Storage.Load(ctx, st.refKey(ref))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("loading session index: %w", err)
	}
	return st.load(ctx, string(b))
}

// Update implements Store. The storage lock makes read-modify-write safe
// across instances that share the storage.
func (st *StorageStore) Update(ctx context.Context, id string, fn func(*Session) (bool, error)) (*Session, error) {
	if !ValidID(id) {
		return nil, ErrMalformedID
	}
	lockName := path.Join("idv", st.Namespace, "lock", id)
	if err := st.Storage.Lock(ctx, lockName); err != nil {
		return nil, fmt.Errorf("locking session: %w", err)
	}
	defer func() { _ = st.Storage.Unlock(context.WithoutCancel(ctx), lockName) }()
	s, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	changed, err := fn(s)
	if err != nil || !changed {
		return s, err
	}
	s.UpdatedAt = st.now()
	return s, st.save(ctx, s)
}

var _ Store = (*StorageStore)(nil)

// Sweep deletes the sessions that expired more than retention ago, with
// their index records, and reports how many it deleted. Expired sessions
// are kept for retention so that late webhooks still find theirs. It reads
// every stored session, so it belongs in a periodic job, never in a request.
func (st *StorageStore) Sweep(ctx context.Context, retention time.Duration) (int, error) {
	dir := path.Join("idv", st.Namespace, "sessions")
	keys, err := st.Storage.List(ctx, dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("listing sessions: %w", err)
	}
	cutoff := st.now().Add(-retention)
	deleted := 0
	for _, key := range keys {
		if ctx.Err() != nil {
			return deleted, ctx.Err()
		}
		id := strings.TrimSuffix(path.Base(key), ".json")
		s, err := st.load(ctx, id)
		if err != nil || !s.ExpiresAt.Before(cutoff) {
			continue // unreadable ones are left for a person to look at
		}
		if s.Ref != "" {
			// Only the index record that still points to this session.
			if b, err := st.Storage.Load(ctx, st.refKey(s.Ref)); err == nil && string(b) == id {
				_ = st.Storage.Delete(ctx, st.refKey(s.Ref))
			}
		}
		if err := st.Storage.Delete(ctx, st.sessionKey(id)); err != nil {
			return deleted, fmt.Errorf("deleting session: %w", err)
		}
		deleted++
	}
	return deleted, nil
}
