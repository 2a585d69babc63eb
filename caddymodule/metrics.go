package caddymodule

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The collectors are process-wide and registered into each configuration's
// registry (as Caddy's reverse_proxy does), so a reload neither panics on a
// duplicate registration nor resets the counts.
var metrics = struct {
	once          sync.Once
	providerCalls *prometheus.CounterVec
	providerTime  *prometheus.HistogramVec
	tokenCache    *prometheus.CounterVec
	sessions      *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	allCollectors []prometheus.Collector
}{}

func initMetrics() {
	metrics.once.Do(func() {
		const ns = "caddy_idv"
		metrics.providerCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "provider_calls_total",
			Help: "Calls made to identity-verification providers, by provider, operation and HTTP status (0: no answer).",
		}, []string{"provider", "op", "status"})
		metrics.providerTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "provider_call_duration_seconds",
			Help:    "Latency of calls to identity-verification providers.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "op"})
		metrics.tokenCache = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "token_cache_events_total",
			Help: "Token cache events: hit, miss, refresh, coalesced (a caller that waited for another's fetch), error.",
		}, []string{"provider", "event"})
		metrics.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sessions_total",
			Help: "Verification sessions started (a billable provider session) and resumed.",
		}, []string{"provider", "outcome"})
		metrics.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "webhooks_total",
			Help: "Provider webhooks: received (authenticated), rejected (refused credentials or none configured), deduplicated (a retried delivery).",
		}, []string{"provider", "outcome"})
		metrics.allCollectors = []prometheus.Collector{metrics.providerCalls, metrics.providerTime, metrics.tokenCache, metrics.sessions, metrics.webhooks}
	})
}

func registerMetrics(reg *prometheus.Registry) error {
	initMetrics()
	if reg == nil {
		return nil
	}
	for _, c := range metrics.allCollectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

func observeCall(provider, op string, status int, d time.Duration) {
	metrics.providerCalls.WithLabelValues(provider, op, strconv.Itoa(status)).Inc()
	metrics.providerTime.WithLabelValues(provider, op).Observe(d.Seconds())
}

func countEvent(vec *prometheus.CounterVec, provider, label string) {
	vec.WithLabelValues(provider, label).Inc()
}
