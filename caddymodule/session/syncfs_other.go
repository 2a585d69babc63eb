//go:build !linux

package session

import "errors"

// Elsewhere sessions are written with certmagic.FileStorage.Store (one
// fsync per file).
const haveSyncfs = false

func syncfs(string) error { return errors.ErrUnsupported }
