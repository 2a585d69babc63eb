package provider

// Flag is an option written alone (user_email_trusted, say): it sets dst.
func Flag(dst *bool) Option {
	return Option{Flag: true, Set: func([]string) error { *dst = true; return nil }}
}
