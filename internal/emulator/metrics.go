package emulator

import (
	"maps"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the emulator's counters (the ones of Stats, read
// at each scrape; ResetStats makes them start over, which Prometheus treats as a restart):
//
//	ksef_emulator_requests_total{operation,code}  answers by operation and HTTP status
//	ksef_emulator_throttled_total                 429s, from the limits or injected
//	ksef_emulator_invoices_total{status}          invoices by final status (200, 430, 440, ...)
//	ksef_emulator_faults_total{kind}              injected faults
//	ksef_emulator_panics_total                    handler panics answered 500
//	ksef_emulator_sessions_total                  sessions opened
//	ksef_emulator_queries_total                   queries started
func (e *Emulator) Collector() prometheus.Collector { return statsCollector{e.stats} }

var (
	descRequests  = prometheus.NewDesc("ksef_emulator_requests_total", "Answers of the emulated KSeF API by operation and HTTP status code.", []string{"operation", "code"}, nil)
	descThrottled = prometheus.NewDesc("ksef_emulator_throttled_total", "429 Too Many Requests answered, from the limits or injected.", nil, nil)
	descInvoices  = prometheus.NewDesc("ksef_emulator_invoices_total", "Invoices that reached a final status, by status code.", []string{"status"}, nil)
	descFaults    = prometheus.NewDesc("ksef_emulator_faults_total", "Injected faults by kind (429, 5xx, ambiguous, stuck, earlyExpiry, packageFail, batchOpenFail, cancel, batchStuck, uploadHang).", []string{"kind"}, nil)
	descPanics    = prometheus.NewDesc("ksef_emulator_panics_total", "Handler panics answered 500.", nil, nil)
	descSessions  = prometheus.NewDesc("ksef_emulator_sessions_total", "Sessions opened.", nil, nil)
	descQueries   = prometheus.NewDesc("ksef_emulator_queries_total", "Invoice queries started.", nil, nil)
)

type statsCollector struct{ st *stats }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descThrottled, descInvoices, descFaults, descPanics, descSessions, descQueries} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	// Copy what is needed under the lock (not Sends, which grows with every invoice).
	c.st.mu.Lock()
	s := c.st.s
	requests := make(map[string]map[int]int, len(s.Requests))
	for op, m := range s.Requests {
		requests[string(op)] = maps.Clone(m)
	}
	outcomes, faults := maps.Clone(s.Outcomes), maps.Clone(s.Faults)
	c.st.mu.Unlock()

	for op, m := range requests {
		for code, n := range m {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), op, strconv.Itoa(code))
		}
	}
	for status, n := range outcomes {
		ch <- prometheus.MustNewConstMetric(descInvoices, prometheus.CounterValue, float64(n), strconv.Itoa(int(status)))
	}
	for kind, n := range faults {
		ch <- prometheus.MustNewConstMetric(descFaults, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(s.TooManyRequests))
	ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(s.Panics))
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.CounterValue, float64(s.Sessions))
	ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, float64(s.Queries))
}
