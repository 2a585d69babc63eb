package provider

import (
	"maps"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/caddymodule/suggest"
)

// Option is one option of a provider's Caddyfile block, for ParseOptions.
type Option struct {
	// Set stores the option's values (never empty, but for a Flag:
	// ParseOptions refuses an option without a value). An error is reported
	// at the option's line.
	Set func(args []string) error
	// Args is how many values the option takes; 0 means exactly one.
	// Negative means one or more.
	Args int
	// Repeat allows the option more than once (each line's values are
	// passed to Set in turn).
	Repeat bool
	// Flag is an option written alone: it takes no value (Set gets none).
	Flag bool
}

// Flag is an option written without a value, which sets dst.
func Flag(dst *bool) Option {
	return Option{Flag: true, Set: func([]string) error { *dst = true; return nil }}
}

// String is an option with one value, stored in dst.
func String(dst *string) Option {
	return Option{Set: func(a []string) error { *dst = a[0]; return nil }}
}

// Strings is a repeatable option with one value per line, appended to dst
// (e.g. secrets during a rotation).
func Strings(dst *[]string) Option {
	return Option{Repeat: true, Set: func(a []string) error { *dst = append(*dst, a[0]); return nil }}
}

// Duration is an option with one Caddy duration (e.g. 10m, 1d), stored in
// dst; it must be positive.
func Duration(dst *caddy.Duration) Option {
	return Option{Set: func(a []string) error {
		d, err := caddy.ParseDuration(a[0])
		if err != nil || d <= 0 {
			return Errorf(0, "a positive duration such as 10m, got %q", a[0])
		}
		*dst = caddy.Duration(d)
		return nil
	}}
}

// ParseOptions parses the block of the provider called name: the directive
// must take no argument, and every line is an option of opts. Errors name
// the provider and the option: unknown (with the closest valid one),
// missing or extra values, given twice.
func ParseOptions(d *caddyfile.Dispenser, name string, opts map[string]Option) error {
	d.Next() // the provider's name
	if d.NextArg() {
		return d.Errf("%s: takes a block of options, not arguments", name)
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		o, ok := opts[opt]
		if !ok {
			return d.Err(suggest.Unknown(name, opt, slices.Collect(maps.Keys(opts))))
		}
		if seen[opt] && !o.Repeat {
			return d.Errf("%s: %s given twice", name, opt)
		}
		seen[opt] = true
		args := d.RemainingArgs()
		want := o.Args
		if want == 0 {
			want = 1
		}
		switch {
		case o.Flag && len(args) > 0:
			return d.Errf("%s: %s takes no value", name, opt)
		case o.Flag:
		case len(args) == 0:
			return d.Errf("%s: %s needs a value", name, opt)
		case want == 1 && len(args) != 1:
			return d.Errf("%s: %s takes one value", name, opt)
		case want > 1 && len(args) != want:
			return d.Errf("%s: %s takes %d values", name, opt, want)
		}
		if err := o.Set(args); err != nil {
			msg := err.Error()
			if pe, ok := err.(*Error); ok {
				msg = pe.Msg
			}
			msg = strings.TrimSpace(msg)
			if strings.HasPrefix(msg, opt+" ") { // it names the option already
				return d.Errf("%s: %s", name, msg)
			}
			return d.Errf("%s: %s: %s", name, opt, msg)
		}
	}
	return nil
}
