package regula

// APIBase is the provider API's base URL (no credential), for the start-up
// summary (caddymodule.Summaries).
func (p *Regula) APIBase() string {
	if p.up == nil || p.up.Base == nil {
		return ""
	}
	return p.up.Base.String()
}
