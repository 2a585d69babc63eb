package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// TestCreateOrUpdateConcurrentFirsts: concurrent first writers of one
// record (the same derived id) all land, on the bbolt database and on a
// storage with locks; the ref is indexed once the record exists.
func TestCreateOrUpdateConcurrentFirsts(t *testing.T) {
	for name, storage := range map[string]func(string) certmagic.Storage{
		"bbolt": func(dir string) certmagic.Storage { return &certmagic.FileStorage{Path: dir} },
		"locked": func(dir string) certmagic.Storage {
			return struct{ certmagic.Storage }{&certmagic.FileStorage{Path: dir}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := &StorageStore{Storage: storage(t.TempDir()), Namespace: "test"}
			t.Cleanup(st.Close)
			ctx := context.Background()
			fresh := &Session{UniqueID: NewID(), Provider: "p", Ref: "record-1", Status: "NEW", ExpiresAt: time.Now().Add(time.Hour)}
			const n = 8
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := st.CreateOrUpdate(ctx, fresh, func(s *Session) (bool, error) {
						s.Events = append(s.Events, Event{Key: string(rune('a' + i))})
						return true, nil
					})
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got, err := st.LoadByRef(ctx, "record-1")
			if err != nil || got.UniqueID != fresh.UniqueID || got.Status != "NEW" || len(got.Events) != n {
				t.Fatalf("got %+v %v, want the record with %d events", got, err, n)
			}
			// Unchanged: nothing written, the record returned as stored.
			same, err := st.CreateOrUpdate(ctx, fresh, func(*Session) (bool, error) { return false, nil })
			if err != nil || len(same.Events) != n || !same.UpdatedAt.Equal(got.UpdatedAt) {
				t.Fatalf("unchanged update: %+v %v", same, err)
			}
		})
	}
}
