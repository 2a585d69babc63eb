// Package sandbox is idv_sandbox, an offline emulator of the providers'
// APIs. Each provider package contributes an emulator module in the
// idv.sandbox namespace; this package hosts them, counts the calls they
// receive, injects faults on request, signs their tokens and delivers their
// webhooks.
//
// Test and debug endpoints, served by every sandbox:
//
//	GET    /__sandbox/calls    counts of calls by "provider op credential"
//	GET    /__sandbox/requests the last requests received (path, credentials)
//	POST   /__sandbox/reset    zero the counts and clear faults
//	POST   /__sandbox/faults   add a fault rule (JSON, see Fault)
//	DELETE /__sandbox/faults   clear fault rules
package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/suggest"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("idv_sandbox", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("idv_sandbox", httpcaddyfile.Before, "handle")
}

// Emulator is a provider's emulator (a module in the idv.sandbox namespace).
type Emulator interface {
	// ProvisionSandbox prepares the emulator with the sandbox's services.
	ProvisionSandbox(ctx caddy.Context, h *Host) error
	// ServeSandbox answers r when it is one of the emulator's routes and
	// reports whether it did.
	ServeSandbox(w http.ResponseWriter, r *http.Request) bool
}

// Handler is the idv_sandbox handler (module ID http.handlers.idv_sandbox).
type Handler struct {
	// Name keys the sandbox's state (tokens, sessions, counters) so that a
	// configuration reload keeps it. Default: "default".
	Name string `json:"name,omitempty"`

	// Emulators are the provider emulators, by provider name.
	EmulatorsRaw caddy.ModuleMap `json:"emulators,omitempty" caddy:"namespace=idv.sandbox"`

	emulators []Emulator
	host      *Host
	release   func()
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.idv_sandbox", New: func() caddy.Module { return new(Handler) }}
}

// Provision loads the emulators.
func (s *Handler) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if s.Name == "" {
		s.Name = "default"
	}
	st, release := sharedState(s.Name)
	s.release = release
	s.host = &Host{Logger: s.logger, Calls: st.calls, Requests: st.requests, Faults: st.faults, Signer: st.signer, state: st}
	mods, err := ctx.LoadModule(s, "EmulatorsRaw")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(mods.(map[string]any)))
	for name := range mods.(map[string]any) {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order for matching
	for _, name := range names {
		em, ok := mods.(map[string]any)[name].(Emulator)
		if !ok {
			return fmt.Errorf("idv_sandbox: %s is not an emulator", name)
		}
		if err := em.ProvisionSandbox(ctx, s.host); err != nil {
			return fmt.Errorf("idv_sandbox %s: %w", name, err)
		}
		s.emulators = append(s.emulators, em)
	}
	if len(s.emulators) == 0 {
		return fmt.Errorf("idv_sandbox: %s", errNoEmulator())
	}
	return nil
}

// Cleanup releases the shared state.
func (s *Handler) Cleanup() error {
	if s.release != nil {
		s.release()
	}
	return nil
}

// ServeHTTP serves the emulators and the /__sandbox endpoints.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.URL.Path {
	case "/__sandbox/calls":
		WriteJSON(w, http.StatusOK, map[string]any{"calls": s.host.Calls.Snapshot()})
		return nil
	case "/__sandbox/requests":
		WriteJSON(w, http.StatusOK, map[string]any{"requests": s.host.Requests.Snapshot()})
		return nil
	case "/__sandbox/reset":
		if r.Method != http.MethodPost {
			WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "POST only"})
			return nil
		}
		s.host.Calls.Reset()
		s.host.Requests.Reset()
		s.host.Faults.Clear()
		WriteJSON(w, http.StatusOK, map[string]any{"reset": true})
		return nil
	case "/__sandbox/faults":
		s.serveFaults(w, r)
		return nil
	}
	for _, em := range s.emulators {
		if em.ServeSandbox(w, r) {
			return nil
		}
	}
	// Like the providers' APIs: a JSON 404, so a wrong api_url path reads
	// as "not found" rather than as an empty 200 ("malformed JSON").
	WriteJSON(w, http.StatusNotFound, map[string]any{"error": "not found in the sandbox: " + r.Method + " " + r.URL.Path,
		"hint": "check the path of api_url (or host) in the idv block"})
	return nil
}

func (s *Handler) serveFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodDelete:
		s.host.Faults.Clear()
		WriteJSON(w, http.StatusOK, map[string]any{"cleared": true})
	case http.MethodPost:
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			WriteJSON(w, http.StatusBadRequest, map[string]any{"error": "malformed fault: " + err.Error()})
			return
		}
		s.host.Faults.Add(f)
		WriteJSON(w, http.StatusOK, map[string]any{"added": f})
	default:
		WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "POST or DELETE"})
	}
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	s := new(Handler)
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return s, err
}

// UnmarshalCaddyfile sets up the sandbox from Caddyfile tokens. Syntax:
//
//	idv_sandbox {
//		name    <name>           # default "default"
//		<provider> { ... }       # one block per emulated provider
//	}
func (s *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		if name == "name" {
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.Name = d.Val()
			continue
		}
		if _, err := caddy.GetModule("idv.sandbox." + name); err != nil {
			valid := []string{"name"}
			for _, m := range caddy.GetModules("idv.sandbox") {
				valid = append(valid, m.ID.Name())
			}
			return d.Err(suggest.Unknown("idv_sandbox", name, valid))
		}
		mod, err := caddyfile.UnmarshalModule(d, "idv.sandbox."+name)
		if err != nil {
			return err // the emulator's own error names it and where
		}
		if s.EmulatorsRaw == nil {
			s.EmulatorsRaw = caddy.ModuleMap{}
		}
		if _, dup := s.EmulatorsRaw[name]; dup {
			return d.Errf("idv_sandbox: %s given twice", name)
		}
		s.EmulatorsRaw[name] = caddyconfig.JSON(mod, nil)
	}
	if len(s.EmulatorsRaw) == 0 {
		return d.Err("idv_sandbox: " + errNoEmulator())
	}
	return nil
}

// errNoEmulator says that a block is missing, naming the emulators Caddy
// has (its module registry: the sandbox names no provider).
func errNoEmulator() string {
	var names []string
	for _, m := range caddy.GetModules("idv.sandbox") {
		names = append(names, m.ID.Name())
	}
	return "at least one provider block (" + strings.Join(names, ", ") + ") is required"
}

// state is what survives a reload.
type state struct {
	calls    *Calls
	requests *RequestLog
	faults   *Faults
	signer   *Signer
	mu       sync.Mutex
	shared   map[string]any
}

func (st *state) Destruct() error { return nil }

var statePool = caddy.NewUsagePool()

func sharedState(name string) (*state, func()) {
	v, _, _ := statePool.LoadOrNew(name, func() (caddy.Destructor, error) {
		return &state{calls: NewCalls(), requests: &RequestLog{}, faults: &Faults{}, signer: NewSigner(), shared: map[string]any{}}, nil
	})
	return v.(*state), func() { _, _ = statePool.Delete(name) }
}

// Host is what an emulator gets from the sandbox.
type Host struct {
	Logger   *zap.Logger
	Calls    *Calls
	Requests *RequestLog
	Faults   *Faults
	Signer   *Signer
	state    *state
}

// Shared returns the value stored under key in the sandbox's state,
// creating it with newFn on first use; emulators keep their sessions here so
// a reload keeps them.
func (h *Host) Shared(key string, newFn func() any) any {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if v, ok := h.state.shared[key]; ok {
		return v
	}
	v := newFn()
	h.state.shared[key] = v
	return v
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
