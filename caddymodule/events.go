package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	gocache "github.com/patrickmn/go-cache"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// The event streams (GET <prefix>/session/events) are built to hold many
// thousands of waiting browsers on one node:
//
//   - the streams of one session share one watch: its latest view, encoded
//     once, and one storage read per change or poll, whatever the number of
//     streams;
//   - a webhook recorded on this node wakes the watch at once (the broker);
//   - one poller per handler re-reads the watched sessions (to see changes
//     made by another node of a cluster) at most EventPollRate sessions a
//     second, a full round every EventPoll at best;
//   - one heartbeat per handler keeps idle streams open through proxies and
//     ends those older than StreamMaxAge;
//   - a stream holds no timer, ticker or goroutine of its own besides the
//     connection's, and ends when the server shuts down or the config is
//     reloaded (the browser's EventSource then reconnects).

// EventPoll is the shortest round of the poller: how often, at best, a
// watched session is re-read from storage to see changes made by another
// instance sharing the storage.
var EventPoll = time.Second

// EventPollRate bounds the storage reads of the poller per second and
// handler: with more watched sessions than this, a round takes longer
// (10 000 watched sessions: a change made on another node reaches this
// node's streams within 5 s). Changes recorded on this node are pushed at
// once.
var EventPollRate = 2000

// StreamHeartbeat is how often an idle stream gets a comment line.
var StreamHeartbeat = 15 * time.Second

// StreamMaxAge is the longest a stream stays open: it then ends (at the
// next heartbeat) and the EventSource reconnects, reading the session anew.
var StreamMaxAge = 10 * time.Minute

// MaxRefreshes bounds the provider reads of Refresher providers in flight
// per process; a refresh that finds no free slot is skipped and tried at
// the next poll.
var MaxRefreshes = 16

// hub holds one handler's watches.
type hub struct {
	mu      sync.Mutex
	watches map[string]*watch
	done    chan struct{} // closed when the server shuts down or the config unloads
	once    sync.Once
	wake    chan struct{} // a new watch for an idle poller

	// The settings, read once when the handler is provisioned.
	poll      time.Duration
	pollRate  int
	heartbeat time.Duration
	maxAge    time.Duration
}

// watch is the shared state of one session's streams.
type watch struct {
	h    *Handler
	id   string
	refs int // streams; guarded by hub.mu

	load sync.Mutex // one storage read at a time

	mu      sync.Mutex
	subs    map[chan struct{}]struct{}
	conns   map[*detached]struct{} // HTTP/1 streams held without a goroutine
	data    []byte                 // the last event's payload
	updated time.Time              // UpdatedAt of the session in data
	version uint64
}

// setupEvents prepares the streams of a handler being provisioned: the
// server's shutdown (which a stopping or reloading config starts) ends
// them, and the hub's goroutines stop with the handler.
func (h *Handler) setupEvents(ctx caddy.Context) {
	hb := &hub{watches: map[string]*watch{}, done: make(chan struct{}), wake: make(chan struct{}, 1),
		poll: EventPoll, pollRate: EventPollRate, heartbeat: StreamHeartbeat, maxAge: StreamMaxAge}
	h.events = hb
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		// Called when http.Server.Shutdown starts, before it waits for
		// active connections: without it a stream would hold a stop (or a
		// reload) until the grace period, or forever without one.
		srv.RegisterOnShutdown(hb.close)
	}
	h.releases = append(h.releases, hb.close)
	go h.poll()
	go h.heartbeat()
}

// close ends every stream of the hub: the goroutine ones see done, the
// detached ones are closed here (the server does not track them).
func (hb *hub) close() {
	hb.once.Do(func() {
		close(hb.done)
		for _, d := range hb.detachedOf() {
			d.end()
		}
	})
}

func (h *Handler) acquire(id string) *watch {
	hb := h.events
	hb.mu.Lock()
	defer hb.mu.Unlock()
	w := hb.watches[id]
	if w == nil {
		w = &watch{h: h, id: id, subs: map[chan struct{}]struct{}{}, conns: map[*detached]struct{}{}}
		hb.watches[id] = w
		subscribe(h.namespace, id, w)
		select {
		case hb.wake <- struct{}{}:
		default:
		}
	}
	w.refs++
	return w
}

func (h *Handler) release(w *watch) {
	hb := h.events
	hb.mu.Lock()
	defer hb.mu.Unlock()
	w.refs--
	if w.refs == 0 {
		delete(hb.watches, w.id)
		unsubscribe(h.namespace, w.id, w)
	}
}

func (w *watch) subscribe() chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	return ch
}

func (w *watch) unsubscribe(ch chan struct{}) {
	w.mu.Lock()
	delete(w.subs, ch)
	w.mu.Unlock()
}

// wakeAll wakes every stream of w (a pending wake-up is enough) and
// writes the latest event to its detached streams.
func (w *watch) wakeAll() {
	w.mu.Lock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	data, version := w.data, w.version
	ds := make([]*detached, 0, len(w.conns))
	for d := range w.conns {
		ds = append(ds, d)
	}
	w.mu.Unlock()
	for _, d := range ds {
		d.push(data, version)
	}
}

func (w *watch) snapshot() ([]byte, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.data, w.version
}

// update reads w's session (and refreshes it from the provider when due),
// and wakes the streams when it changed.
func (h *Handler) update(ctx context.Context, w *watch) error {
	w.load.Lock()
	defer w.load.Unlock()
	cur, err := h.store.Load(ctx, w.id)
	if err != nil && !errors.Is(err, session.ErrExpired) {
		return err
	}
	cur = h.refresh(ctx, cur)
	if w.set(cur) {
		w.wakeAll()
	}
	return nil
}

// set makes cur the watch's view and reports whether it changed. The lock
// is released by a defer: a panic while encoding must not leave it held
// (the heartbeat and every stream of the watch would then wait forever).
func (w *watch) set(cur *session.Session) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.data != nil && cur.UpdatedAt.Equal(w.updated) {
		return false
	}
	b, _ := json.Marshal(viewOf(cur))
	w.data = append(append(append(make([]byte, 0, len(b)+30), "event: status\ndata: "...), b...), "\n\n"...)
	w.updated = cur.UpdatedAt
	w.version++
	return true
}

// openWatch finds the cookie's session and acquires its watch, read from
// storage. It runs on a goroutine of its own: an HTTP/2 stream keeps its
// handler goroutine for as long as it is open, and the storage read and
// JSON decoding would grow that goroutine's stack to 16 KiB for good (the
// runtime only halves a parked stack that uses under a quarter of it, and
// Caddy's handler chain alone takes about 5 KiB). Waiting at this depth
// keeps it at 8 KiB: 8 KiB less per waiting browser.
func (h *Handler) openWatch(r *http.Request) (wt *watch, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil { // Caddy recovers only the handler goroutine
				h.logger.Error("event stream set-up panicked", zap.String("panic", fmt.Sprint(v)), zap.Stack("stack"))
				if wt != nil {
					h.release(wt)
				}
				wt, err = nil, provider.Errorf(http.StatusInternalServerError, "the event stream could not be opened")
			}
		}()
		var s *session.Session
		if s, err = h.cookieSession(r); err != nil {
			return
		}
		if h.events == nil {
			err = provider.Errorf(http.StatusServiceUnavailable, "event streams are not available")
			return
		}
		wt = h.acquire(s.UniqueID)
		// A new stream reads storage itself: a browser reconnecting from
		// another node must not get a view older than the one it had.
		if err = h.update(r.Context(), wt); err != nil {
			h.release(wt)
			wt = nil
		}
	}()
	<-done
	return wt, err
}

// serveSessionEvents streams the session's view as server-sent events: once
// at once, then on every change.
func (h *Handler) serveSessionEvents(w http.ResponseWriter, r *http.Request) error {
	wt, err := h.openWatch(r)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 && h.detach(rc, hd, wt) {
		return nil // the detached stream releases wt when it ends
	}
	defer h.release(wt)
	ch := wt.subscribe()
	defer wt.unsubscribe(ch)
	w.WriteHeader(http.StatusOK)

	start := time.Now()
	var sent uint64
	lastWrite := start
	for {
		data, version := wt.snapshot()
		switch {
		case version != sent:
			if _, err := w.Write(data); err != nil || rc.Flush() != nil {
				return nil
			}
			sent, lastWrite = version, time.Now()
		case time.Since(lastWrite) >= h.events.heartbeat/2:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
			lastWrite = time.Now()
		}
		if time.Since(start) >= h.events.maxAge {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-h.events.done:
			return nil
		case <-ch:
		}
	}
}

// poll re-reads the watched sessions, at most EventPollRate a second.
func (h *Handler) poll() {
	hb := h.events
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-hb.done
		cancel()
	}()
	lim := rate.NewLimiter(rate.Limit(hb.pollRate), 1)
	var ids []string
	for {
		round := time.Now()
		hb.mu.Lock()
		ids = ids[:0]
		for id := range hb.watches {
			ids = append(ids, id)
		}
		hb.mu.Unlock()
		for _, id := range ids {
			if lim.Wait(ctx) != nil {
				return
			}
			hb.mu.Lock()
			wt := hb.watches[id]
			hb.mu.Unlock()
			if wt == nil {
				continue
			}
			if err := h.update(ctx, wt); err != nil && ctx.Err() == nil && !errors.Is(err, session.ErrNotFound) {
				h.logger.Debug("event stream poll failed", zap.String("session", session.LogID(id)), zap.String("error", redactErr(err)))
			}
		}
		if len(ids) == 0 {
			select { // idle until a stream opens
			case <-hb.done:
				return
			case <-hb.wake:
			}
			continue
		}
		t := time.NewTimer(max(hb.poll-time.Since(round), 0))
		select {
		case <-hb.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// heartbeat wakes every stream now and then: idle ones write a comment,
// old ones end.
func (h *Handler) heartbeat() {
	hb := h.events
	t := time.NewTicker(hb.heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-hb.done:
			return
		case <-t.C:
		}
		hb.mu.Lock()
		ws := make([]*watch, 0, len(hb.watches))
		for _, wt := range hb.watches {
			ws = append(ws, wt)
		}
		hb.mu.Unlock()
		for _, wt := range ws {
			wt.mu.Lock()
			for ch := range wt.subs {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			wt.mu.Unlock()
		}
		now := time.Now()
		for _, d := range hb.detachedOf() {
			d.beat(now)
		}
	}
}

// refresh asks an EventRefresher provider for news of a pending session: at most
// once per provider.RefreshEvery per session and process, however many
// streams and /session polls ask at once (singleflight), and with at most
// MaxRefreshes provider reads in flight.
func (h *Handler) refresh(ctx context.Context, s *session.Session) *session.Session {
	er, ok := h.provider.(provider.EventRefresher)
	if !ok || s.Result != "" {
		return s
	}
	key := h.namespace + "/" + s.UniqueID
	if _, recent := refreshed.Get(key); recent {
		return s
	}
	v, _, _ := refreshes.Do(key, func() (any, error) {
		if _, recent := refreshed.Get(key); recent {
			return nil, nil
		}
		if !refreshSlots.TryAcquire(1) {
			return nil, nil
		}
		defer refreshSlots.Release(1)
		refreshed.Set(key, true, provider.RefreshEvery)
		// Shared by every caller: none of their cancellations ends it.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(h.Timeout))
		defer cancel()
		return h.refreshKit(cctx, s, er), nil
	})
	if ns, ok := v.(*session.Session); ok && ns != nil {
		return ns
	}
	return s
}

var (
	// refreshed remembers which sessions were refreshed recently.
	refreshed    = gocache.New(time.Minute, time.Minute)
	refreshes    singleflight.Group
	refreshSlots = semaphore.NewWeighted(int64(MaxRefreshes))
)

// The broker is process-wide, so that every handler watching a session
// (two handlers sharing a namespace, or the configs either side of a
// reload) hears the events recorded by any of them.
var broker = struct {
	sync.Mutex
	subs map[string]map[*watch]struct{}
}{subs: map[string]map[*watch]struct{}{}}

func subscribe(ns, id string, w *watch) {
	key := ns + "/" + id
	broker.Lock()
	if broker.subs[key] == nil {
		broker.subs[key] = map[*watch]struct{}{}
	}
	broker.subs[key][w] = struct{}{}
	broker.Unlock()
}

func unsubscribe(ns, id string, w *watch) {
	key := ns + "/" + id
	broker.Lock()
	delete(broker.subs[key], w)
	if len(broker.subs[key]) == 0 {
		delete(broker.subs, key)
	}
	broker.Unlock()
}

// notify is called when an event was recorded on the session: its watches
// read it at once.
func notify(ns, id string) {
	broker.Lock()
	ws := make([]*watch, 0, len(broker.subs[ns+"/"+id]))
	for w := range broker.subs[ns+"/"+id] {
		ws = append(ws, w)
	}
	broker.Unlock()
	for _, w := range ws {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(w.h.Timeout))
			defer cancel()
			_ = w.h.update(ctx, w)
		}()
	}
}

// detached is an HTTP/1 event stream taken over from the server
// (http.Hijacker): it holds its connection and nothing else, no goroutine,
// no stack, no request state, so ten thousand waiting browsers cost little
// more than their sockets. Events and heartbeats are written to it by the
// watch and the hub; a failed write, StreamMaxAge or the server's shutdown
// closes it.
type detached struct {
	mu        sync.Mutex
	c         net.Conn
	w         *watch
	start     time.Time
	lastWrite time.Time
	sent      uint64
	closed    bool
	hb        *hub
}

// detach answers the stream on its hijacked connection: the response head
// (with every header set so far, and Connection: close, which delimits the
// body) and the current event. It reports false when the connection cannot
// be taken over (HTTP/2, or a wrapper without Hijack): the caller then serves
// the stream itself.
func (h *Handler) detach(rc *http.ResponseController, hd http.Header, wt *watch) bool {
	conn, rw, err := rc.Hijack()
	if err != nil {
		return false
	}
	data, version := wt.snapshot()
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hd.Del("Content-Length")
	hd.Del("Transfer-Encoding")
	hd.Set("Connection", "close")
	_ = hd.Write(&b)
	b.WriteString("\r\n")
	b.Write(data)
	// What the server had buffered for this connection is dropped with rw:
	// the head above is the first byte it sends.
	_ = rw
	now := time.Now()
	d := &detached{c: conn, w: wt, start: now, lastWrite: now, sent: version, hb: h.events}
	_ = conn.SetWriteDeadline(now.Add(streamWriteTimeout))
	if _, err := conn.Write(b.Bytes()); err != nil {
		conn.Close()
		h.release(wt)
		return true // answered (badly): the client is gone
	}
	wt.mu.Lock()
	wt.conns[d] = struct{}{}
	wt.mu.Unlock()
	select {
	case <-h.events.done: // shut down meanwhile: the hub's sweep may have passed
		d.end()
	default:
	}
	return true
}

// streamWriteTimeout bounds one write to a detached stream: a browser that
// stops reading is dropped rather than blocking the others.
const streamWriteTimeout = 5 * time.Second

func (d *detached) write(p []byte) bool {
	_ = d.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := d.c.Write(p); err != nil {
		return false
	}
	d.lastWrite = time.Now()
	return true
}

// push writes the event of version unless it was sent already.
func (d *detached) push(data []byte, version uint64) {
	d.mu.Lock()
	if d.closed || version == d.sent {
		d.mu.Unlock()
		return
	}
	ok := d.write(data)
	d.sent = version
	d.mu.Unlock()
	if !ok {
		d.end()
	}
}

// beat ends an old stream, or writes a comment to an idle one.
func (d *detached) beat(now time.Time) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	if now.Sub(d.start) >= d.hb.maxAge {
		d.mu.Unlock()
		d.end()
		return
	}
	ok := true
	if now.Sub(d.lastWrite) >= d.hb.heartbeat/2 {
		ok = d.write([]byte(": keep-alive\n\n"))
	}
	d.mu.Unlock()
	if !ok {
		d.end()
	}
}

// end closes the stream once and releases its watch.
func (d *detached) end() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.c.Close()
	d.mu.Unlock()
	w := d.w
	w.mu.Lock()
	delete(w.conns, d)
	w.mu.Unlock()
	w.h.release(w)
}

// detachedOf lists the detached streams of every watch of the hub.
func (hb *hub) detachedOf() []*detached {
	hb.mu.Lock()
	ws := make([]*watch, 0, len(hb.watches))
	for _, w := range hb.watches {
		ws = append(ws, w)
	}
	hb.mu.Unlock()
	var ds []*detached
	for _, w := range ws {
		w.mu.Lock()
		for d := range w.conns {
			ds = append(ds, d)
		}
		w.mu.Unlock()
	}
	return ds
}
