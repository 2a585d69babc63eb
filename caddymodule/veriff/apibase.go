package veriff

// APIBase is the provider API's base URL (no credential), for the start-up
// summary (caddymodule.Summaries), which marks a sandbox of this process.
func (p *Veriff) APIBase() string { return p.base }
