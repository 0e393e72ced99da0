package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
)

// withMetrics serves the emulator's counters at GET /metrics (a path the KSeF API does not
// have) beside its API.
func withMetrics(e *emulator.Emulator) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", e.Handler())
	return mux
}
