package caddymodule

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// jwtLike matches anything shaped like a JWT (or a JWS in general): provider
// tokens and executive tokens are JWTs, and none belongs in a log line.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// Redacted replaces a secret in log output.
const Redacted = "[REDACTED]"

// secrets is the process-wide registry of strings never to log: every
// configured secret and every credential the sidecar obtains. Process-wide,
// because a secret registered under one configuration must stay redacted in
// lines logged while the next one starts.
var secrets = struct {
	sync.RWMutex
	set      map[string]time.Time // zero: never pruned
	replacer *strings.Replacer
}{set: map[string]time.Time{}}

// minSecret is the shortest string registered: shorter ones would redact
// ordinary words.
const minSecret = 6

// maxExpiring bounds the credentials registered with an expiry: past it,
// the ones expiring first are dropped (they are JWTs, which the pattern
// below redacts anyway).
const maxExpiring = 64

// RegisterSecret adds s to the redactor for the life of the process.
func RegisterSecret(s string) { RegisterSecretUntil(s, time.Time{}) }

// RegisterSecretUntil adds s to the redactor until the time until (a zero
// time means forever). Expired entries are pruned whenever one is added, so
// repeated logins do not grow the registry.
func RegisterSecretUntil(s string, until time.Time) {
	if len(s) < minSecret {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	if old, ok := secrets.set[s]; ok && (old.IsZero() || !until.IsZero() && !until.After(old)) {
		return
	}
	secrets.set[s] = until
	now := time.Now()
	var expiring []string
	for k, exp := range secrets.set {
		switch {
		case exp.IsZero():
		case !now.Before(exp):
			delete(secrets.set, k)
		default:
			expiring = append(expiring, k)
		}
	}
	if len(expiring) > maxExpiring {
		slices.SortFunc(expiring, func(a, b string) int { return secrets.set[a].Compare(secrets.set[b]) })
		for _, k := range expiring[:len(expiring)-maxExpiring] {
			delete(secrets.set, k)
		}
	}
	pairs := make([]string, 0, 2*len(secrets.set))
	for k := range secrets.set {
		pairs = append(pairs, k, Redacted)
	}
	secrets.replacer = strings.NewReplacer(pairs...)
}

// secretCount is the registry's size (tests).
func secretCount() int {
	secrets.RLock()
	defer secrets.RUnlock()
	return len(secrets.set)
}

// Redact returns s with registered secrets and JWT-shaped strings removed.
func Redact(s string) string {
	secrets.RLock()
	r := secrets.replacer
	secrets.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	if strings.Contains(s, "eyJ") {
		s = jwtLike.ReplaceAllString(s, Redacted)
	}
	return s
}

// redactErr renders an error cause for a log line.
func redactErr(err error) string { return Redact(err.Error()) }

// redactingCore wraps a zapcore.Core so that every message and string-like
// field passes through Redact.
type redactingCore struct{ zapcore.Core }

// withRedaction returns logger whose output is redacted.
func withRedaction(logger *zap.Logger) *zap.Logger {
	return logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return redactingCore{c} }))
}

func (c redactingCore) With(fields []zapcore.Field) zapcore.Core {
	return redactingCore{c.Core.With(redactFields(fields))}
}

// Check asks the wrapped core, so that each sink's own level and
// include/exclude rules apply, and defers the write to the entry it returns
// (with the message already redacted; fields are redacted at write time).
func (c redactingCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.Core.Enabled(ent.Level) {
		return ce // nothing would write it: no redaction to pay for (hot paths log at INFO)
	}
	ent.Message = Redact(ent.Message)
	inner := c.Core.Check(ent, nil)
	if inner == nil {
		return ce
	}
	return ce.AddCore(ent, deferredWrite{inner})
}

func (c redactingCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	ent.Message = Redact(ent.Message)
	return c.Core.Write(ent, redactFields(fields))
}

// deferredWrite writes a checked entry of the wrapped core with redacted
// fields. It is only ever reached through Write.
type deferredWrite struct{ inner *zapcore.CheckedEntry }

func (d deferredWrite) Enabled(zapcore.Level) bool        { return true }
func (d deferredWrite) With([]zapcore.Field) zapcore.Core { return d }
func (d deferredWrite) Sync() error                       { return nil }
func (d deferredWrite) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(ent, d)
}
func (d deferredWrite) Write(_ zapcore.Entry, fields []zapcore.Field) error {
	d.inner.Write(redactFields(fields)...)
	return nil
}

func redactFields(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = Redact(f.String)
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok {
				f = zap.String(f.Key, Redact(err.Error()))
			}
		case zapcore.StringerType, zapcore.ReflectType, zapcore.ByteStringType:
			f = zap.String(f.Key, Redact(fmt.Sprint(fieldValue(f))))
		}
		out[i] = f
	}
	return out
}

func fieldValue(f zapcore.Field) any {
	if f.Type == zapcore.ByteStringType {
		if b, ok := f.Interface.([]byte); ok {
			return string(b)
		}
	}
	return f.Interface
}
