// Package redisstorage is a Caddy storage module (caddy.storage.idv_redis)
// that keeps Caddy's storage — TLS assets and the idv handler's sessions —
// in one Redis server, so every instance of a cluster sees the same data and
// shares one set of locks.
//
// Caddyfile (global options):
//
//	storage idv_redis {
//		address    127.0.0.1:6379       # default
//		username   {env.REDIS_USERNAME} # optional (Redis 6 ACL user)
//		password   {env.REDIS_PASSWORD} # optional
//		db         0                    # default 0
//		key_prefix caddy                # default "caddy"
//		tls                             # connect with TLS
//		timeout    5s                   # dial, read and write timeout; default 5s
//		lock_ttl   10s                  # lease of a lock whose holder stopped refreshing it; default 10s
//	}
//
// {env.*} placeholders are resolved when the module starts, so secrets stay
// out of the adapted JSON.
//
// # Key layout
//
// A storage key K (certmagic's slash-separated keys, e.g.
// "idv/incode-1a2b3c4d/sessions/<uuid>.json") is the Redis hash
// "<key_prefix>:data:K" with the fields "value" (the bytes) and "modified"
// (RFC 3339 time of the last Store). Directories are implicit, as in
// certmagic's file system storage: "a/b" is a directory when some key
// starts with "a/b/". A lock named N is the Redis string
// "<key_prefix>:lock:N" holding the holder's random token, with a TTL.
//
// Load, Store and Delete of a file are single commands (a file has nothing
// below it, as on the file system storage: Delete of a key that is a file
// removes that file only). Exists, Stat, List and Delete of a directory SCAN
// the keys below it (glob characters in keys are escaped), so they cost
// O(keys in the database): fine for certmagic's occasional maintenance, and
// the idv session store never uses them on Redis.
//
// The session store also uses the optional interfaces of package session:
// StoreIndexed writes a session, its index record and its entry in the
// expiry index (the sorted set "<key_prefix>:index:idv/<ns>/expiry", scored
// by unix milliseconds) in one MULTI/EXEC; IndexDue/IndexRemove let the
// sweep read only the sessions due. ProbeWrite (SET "<key_prefix>:probe"
// with a 10s TTL) tells before a billable provider call whether a session
// could be stored.
//
// # Locks
//
// Lock is "SET <lock> <token> NX PX <lock_ttl>", retried with a growing
// (capped, jittered) back-off until it succeeds or the context ends. While it
// is held, a goroutine extends the TTL every lock_ttl/3 with a Lua script that
// checks the token, so a lock outlives long operations but a holder that
// dies (crash, kill -9, network partition) loses it within lock_ttl. Unlock
// deletes the key with a compare-and-delete Lua script: only the holder's
// token releases it, so a holder whose lease expired cannot release the lock
// another instance now holds. Within one process, certmagic's Unlock names
// a lock and not an acquisition, so a per-name gate admits one holder at a
// time: a second caller waits for the first one's Unlock even when the
// first one's lease expired, instead of taking a lock the first one would
// then release.
//
// One go-redis client (connection pool) is shared by every configuration
// with the same connection settings, through a caddy.UsagePool, so config
// reloads do not leak connections; the last Cleanup closes it.
package redisstorage
