package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
)

// Webhooks is how an emulator delivers notifications, as the providers do:
// a POST of JSON, authenticated by a static header, HTTP basic or an OAuth2
// client-credentials token, retried with exponential backoff until a 2xx.
type Webhooks struct {
	// URL receives the notifications; empty disables them.
	URL string `json:"url,omitempty"`
	// Auth is "", "header", "basic" or "oauth2".
	Auth string `json:"auth,omitempty"`
	// For header: the header name and value. For basic: user and password.
	// For oauth2: client id and secret, and the token URL.
	A        string `json:"a,omitempty"`
	B        string `json:"b,omitempty"`
	TokenURL string `json:"token_url,omitempty"`
	// First is the first retry delay, Factor multiplies it for each next
	// retry, Attempts bounds the deliveries. Incode: 30s, 2.5, 5. Sandbox
	// default: 200ms, 2.5, 5.
	First    caddy.Duration `json:"first,omitempty"`
	Factor   float64        `json:"factor,omitempty"`
	Attempts int            `json:"attempts,omitempty"`
	// Timeout of one delivery. Default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// Options adds the webhook options named (all three when none is) to an
// emulator's options, for ParseBlock:
//
//	webhook_url   <url>
//	webhook_auth  header <name> <value> | basic <user> <password> | oauth2 <client_id> <client_secret> <token_url>
//	webhook_retry <first> <factor> <attempts>
func (wh *Webhooks) Options(opts map[string]provider.Option, names ...string) map[string]provider.Option {
	all := map[string]provider.Option{
		"webhook_url": provider.String(&wh.URL),
		"webhook_auth": {Args: -1, Set: func(args []string) error {
			switch {
			case len(args) == 3 && (args[0] == "header" || args[0] == "basic"):
				wh.Auth, wh.A, wh.B = args[0], args[1], args[2]
			case len(args) == 4 && args[0] == "oauth2":
				wh.Auth, wh.A, wh.B, wh.TokenURL = args[0], args[1], args[2], args[3]
			default:
				return errors.New("header <name> <value>, basic <user> <password> or oauth2 <client_id> <client_secret> <token_url>")
			}
			return nil
		}},
		"webhook_retry": {Args: 3, Set: func(args []string) error {
			first, err := caddy.ParseDuration(args[0])
			if err != nil {
				return err
			}
			var factor float64
			var attempts int
			if _, err := fmt.Sscan(args[1], &factor); err != nil || factor < 1 {
				return errors.New("factor must be a number >= 1")
			}
			if _, err := fmt.Sscan(args[2], &attempts); err != nil || attempts < 1 {
				return errors.New("attempts must be >= 1")
			}
			wh.First, wh.Factor, wh.Attempts = caddy.Duration(first), factor, attempts
			return nil
		}},
	}
	if len(names) == 0 {
		names = []string{"webhook_url", "webhook_auth", "webhook_retry"}
	}
	for _, n := range names {
		opts[n] = all[n]
	}
	return opts
}

// ParseBlock parses an emulator's block with provider.ParseOptions; an
// option given twice takes its last value, as the emulators always did.
func ParseBlock(d *caddyfile.Dispenser, name string, opts map[string]provider.Option) error {
	for k, o := range opts {
		o.Repeat = true
		opts[k] = o
	}
	return provider.ParseOptions(d, name, opts)
}

func (wh *Webhooks) defaults() {
	if wh.First == 0 {
		wh.First = caddy.Duration(200 * time.Millisecond)
	}
	if wh.Factor == 0 {
		wh.Factor = 2.5
	}
	if wh.Attempts == 0 {
		wh.Attempts = 5
	}
	if wh.Timeout == 0 {
		wh.Timeout = caddy.Duration(5 * time.Second)
	}
}

// Send delivers payload in the background, authenticated as configured
// (webhook_auth), retrying on the configured schedule until the receiver
// answers as Incode counts a delivery (a 200 with a JSON body, or a 204).
// It returns at once; done (if not nil) receives the final delivery error.
func (wh *Webhooks) Send(logger *zap.Logger, payload any, done chan<- error) {
	body, _ := json.Marshal(payload)
	wh.send(logger, func(ctx context.Context, target string) error {
		h, err := wh.authHeader(ctx)
		if err != nil {
			return err
		}
		// Incode: delivered on a 200 with a JSON body, or a 204.
		return post(ctx, target, body, h, func(resp *http.Response) bool {
			return resp.StatusCode == http.StatusNoContent ||
				(resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "json"))
		})
	}, done)
}

// send runs attempt on the retry schedule in the background. Each send
// works on a copy of the settings with the defaults filled in, so that
// concurrent sends never write the shared ones; the URL may hold global
// placeholders ({env.X}), resolved at each send.
func (wh *Webhooks) send(logger *zap.Logger, attempt func(ctx context.Context, target string) error, done chan<- error) {
	target := caddy.NewReplacer().ReplaceKnown(wh.URL, "")
	if target == "" {
		if done != nil {
			done <- nil
		}
		return
	}
	cfg := *wh
	cfg.defaults()
	go func() {
		delay := time.Duration(cfg.First)
		var err error
		for n := 1; n <= cfg.Attempts; n++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Timeout))
			err = attempt(ctx, target)
			cancel()
			if err == nil {
				logger.Info("sandbox webhook delivered", zap.String("url", logURL(target)), zap.Int("attempt", n))
				break
			}
			if n == cfg.Attempts {
				// The sidecar will not hear of this session from the
				// sandbox: say so, and what to check.
				logger.Warn("sandbox webhook not delivered; giving up", zap.String("url", logURL(target)), zap.Int("attempts", n), zap.Error(err),
					zap.String("check", "the webhook URL, the webhook secret, and that the site is running"))
				break
			}
			logger.Info("sandbox webhook failed; will retry", zap.String("url", logURL(target)), zap.Int("attempt", n),
				zap.Duration("retry_in", delay), zap.Error(err))
			time.Sleep(delay)
			delay = time.Duration(float64(delay) * cfg.Factor)
		}
		if done != nil {
			done <- err
		}
	}()
}

// InOrder delivers items in the background, each after the previous one's
// delivery ended, as the providers order a session's notifications.
func InOrder[T any](items []T, send func(item T, done chan<- error)) {
	go func() {
		for _, it := range items {
			done := make(chan error, 1)
			send(it, done)
			<-done
		}
	}()
}

// logURL is a delivery URL without its query, which may hold a key (Focalx
// sends its damage reports with ?x-api-key=).
func logURL(raw string) string {
	u, _, _ := strings.Cut(raw, "?")
	return u
}

var client = &http.Client{Timeout: 10 * time.Second}

// authHeader is the webhook_auth credential of a delivery.
func (wh *Webhooks) authHeader(ctx context.Context) (http.Header, error) {
	h := http.Header{}
	switch wh.Auth {
	case "header":
		h.Set(wh.A, wh.B)
	case "basic":
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(wh.A+":"+wh.B)))
	case "oauth2":
		tok, err := wh.oauthToken(ctx)
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	return h, nil
}

// post delivers body to target with header; delivered judges the answer.
func post(ctx context.Context, target string, body []byte, header http.Header, delivered func(*http.Response) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its text holds the URL, and so any key in its query
			return fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	if !delivered(resp) {
		return fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return nil
}

func (wh *Webhooks) oauthToken(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, wh.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(wh.A, wh.B)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token URL answered %d", resp.StatusCode)
	}
	return out.AccessToken, nil
}

// DurationOption is an option with one Caddy duration, stored in dst (0 or
// less is left to the emulator's provisioning to judge).
func DurationOption(dst *caddy.Duration) provider.Option {
	return provider.Option{Set: func(a []string) error {
		d, err := caddy.ParseDuration(a[0])
		if err != nil {
			return err
		}
		*dst = caddy.Duration(d)
		return nil
	}}
}

// SignedWebhooks is the webhook_auth option of an emulator whose provider
// signs its webhooks: refused, saying why.
func SignedWebhooks(name string) provider.Option {
	return provider.Option{Args: -1, Set: func([]string) error {
		return errors.New(name + " signs its webhooks: there is no webhook_auth")
	}}
}
