package telemetry

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Probe results as metrics, so that alerts need no prober of their own.
const (
	MetricDependencyUp = "ksef_dependency_up"
	MetricWorkerAlive  = "ksef_worker_alive"
)

var (
	descDependencyUp = prometheus.NewDesc(MetricDependencyUp,
		"1 while the readiness check of a dependency (nats, storage, ksef) passes, else 0; what /readyz reports.", []string{"dependency"}, nil)
	descWorkerAlive = prometheus.NewDesc(MetricWorkerAlive,
		"1 while the worker's consume loop runs and is not stalled, else 0; what /healthz reports.", []string{"worker"}, nil)
)

// healthCollector reports h's probes at each scrape (readiness checks answer from their cache).
type healthCollector struct{ h *Health }

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDependencyUp
	ch <- descWorkerAlive
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*checkTimeout)
	defer cancel()
	if ready := c.h.Ready(ctx); ready.Down["startup"] == "" {
		for _, name := range ready.Up {
			ch <- prometheus.MustNewConstMetric(descDependencyUp, prometheus.GaugeValue, 1, name)
		}
		for name := range ready.Down {
			ch <- prometheus.MustNewConstMetric(descDependencyUp, prometheus.GaugeValue, 0, name)
		}
	}
	live := c.h.Live(ctx)
	for name := range live.Workers {
		v := 1.0
		if _, down := live.Down["worker:"+name]; down {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(descWorkerAlive, prometheus.GaugeValue, v, name)
	}
}
