package sumsub

// APIBase is the provider API's base URL (no credential), for the start-up
// summary and the core's sandbox checks.
func (p *Sumsub) APIBase() string { return p.base }

// WebhookSecretsConfig are the webhook secrets as configured (placeholders
// unresolved): the core refuses a written-in default against a real API.
func (p *Sumsub) WebhookSecretsConfig() []string { return p.WebhookSecrets }
