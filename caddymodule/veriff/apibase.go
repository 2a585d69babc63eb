package veriff

// APIBase is the provider API's base URL (no credential), for the start-up
// summary and the core's sandbox checks.
func (p *Veriff) APIBase() string { return p.base }

// WebhookSecretsConfig are the webhook secrets as configured (placeholders
// unresolved): the core refuses a written-in default against a real API.
func (p *Veriff) WebhookSecretsConfig() []string { return p.SharedSecrets }
