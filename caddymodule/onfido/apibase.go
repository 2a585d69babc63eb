package onfido

// APIBase is the provider API's base URL (no credential), for the start-up
// summary (caddymodule.Summaries), which marks a sandbox of this process.
func (p *Onfido) APIBase() string { return p.base }
