package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Metrics are the pipeline's Prometheus metrics, in a registry of their own (never the global
// default one, so two pipelines in one process, or tests, do not share counters).
//
// Labels are bounded: worker names, subjects, operations, HTTP codes, outcomes, error kinds,
// buckets and session modes. Invoice ids, NIPs, session ids and KSeF numbers never become labels.
type Metrics struct {
	reg *prometheus.Registry

	eventsHandled   *prometheus.CounterVec   // worker, subject, outcome
	handlerDuration *prometheus.HistogramVec // worker, subject
	deadLetters     *prometheus.CounterVec   // worker, kind

	apiRequests *prometheus.CounterVec   // operation, code
	apiDuration *prometheus.HistogramVec // operation
	apiRetries  *prometheus.CounterVec   // operation
	apiThrottle *prometheus.CounterVec   // operation
	limitWaits  *prometheus.CounterVec   // operation

	storageBytes *prometheus.CounterVec // bucket
	openSessions *prometheus.GaugeVec   // mode

	invoicesWarned prometheus.Counter
	warnings       prometheus.Counter

	consumers *consumers // worker; see Consumer
}

// Metric names, documented in docs/operations.md.
const (
	MetricEventsHandled   = "ksef_events_handled_total"
	MetricHandlerDuration = "ksef_handler_duration_seconds"
	MetricDeadLetters     = "ksef_dead_letters_total"
	MetricAPIRequests     = "ksef_api_requests_total"
	MetricAPIDuration     = "ksef_api_request_duration_seconds"
	MetricAPIRetries      = "ksef_api_retries_total"
	MetricAPIThrottled    = "ksef_api_throttled_total"
	MetricRateLimitWaits  = "ksef_rate_limit_waits_total"
	MetricStorageBytes    = "ksef_storage_bytes_total"
	MetricOpenSessions    = "ksef_open_sessions"
	MetricInvoicesWarned  = "ksef_invoices_with_warnings_total"
	MetricWarnings        = "ksef_invoice_warnings_total"
)

// CodeError is the code label of a KSeF request that got no HTTP answer (network error, timeout).
const CodeError = "error"

// NewMetrics returns the metrics, registered with a new registry together with the Go runtime's
// and the process's collectors.
func NewMetrics() *Metrics {
	// Handlers take from milliseconds (a status check) to minutes (a batch package).
	handlerBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	apiBuckets := []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		eventsHandled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEventsHandled,
			Help: "Messages settled by a worker, by subject and outcome (acked, snoozed, retried, dead_lettered)."},
			[]string{"worker", "subject", "outcome"}),
		handlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricHandlerDuration,
			Help: "Time from a message's delivery to its settlement, handler and settling included.", Buckets: handlerBuckets},
			[]string{"worker", "subject"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeadLetters,
			Help: "Messages dead-lettered by a worker, by error kind."}, []string{"worker", "kind"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAPIRequests,
			Help: `HTTP attempts of KSeF calls by operation and HTTP status code ("error": no answer).`},
			[]string{"operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricAPIDuration,
			Help: "Duration of one HTTP attempt of a KSeF call (limiter waits and backoff excluded).", Buckets: apiBuckets},
			[]string{"operation"}),
		apiRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAPIRetries,
			Help: "KSeF attempts that failed and are repeated by the client (5xx, 429, network errors)."},
			[]string{"operation"}),
		apiThrottle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAPIThrottled,
			Help: "KSeF answers 429 Too Many Requests; steady operation has none."}, []string{"operation"}),
		limitWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRateLimitWaits,
			Help: "KSeF calls that had to wait for a request slot of the shared limiter (or gave up waiting)."},
			[]string{"operation"}),
		storageBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricStorageBytes,
			Help: "Bytes stored in object storage, by bucket."}, []string{"bucket"}),
		openSessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricOpenSessions,
			Help: "KSeF sessions this process holds open, by mode (online, batch)."}, []string{"mode"}),
		invoicesWarned: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricInvoicesWarned,
			Help: "Invoices the sender validated that have warnings: problems KSeF does not check (totals that do not add up, ...)."}),
		warnings: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricWarnings,
			Help: "Warnings the sender found on the invoices it validated (at most 21 per invoice)."}),
		consumers: &consumers{infos: map[string]ConsumerInfo{}},
	}
	m.reg.MustRegister(m.eventsHandled, m.handlerDuration, m.deadLetters, m.apiRequests, m.apiDuration,
		m.apiRetries, m.apiThrottle, m.limitWaits, m.storageBytes, m.openSessions, m.invoicesWarned, m.warnings, m.consumers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in; other collectors (the emulator's) may join it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Settled records a settled message of worker name; it fits worker.Config.OnSettled.
func (m *Metrics) Settled(name string) func(msg *worker.Message, o worker.Outcome, err error, elapsed time.Duration) {
	return func(msg *worker.Message, o worker.Outcome, err error, elapsed time.Duration) {
		m.eventsHandled.WithLabelValues(name, msg.Subject, string(o)).Inc()
		m.handlerDuration.WithLabelValues(name, msg.Subject).Observe(elapsed.Seconds())
		if o == worker.DeadLettered {
			m.deadLetters.WithLabelValues(name, string(worker.DeadLetterKind(err))).Inc()
		}
	}
}

// ObserveKSeF records one HTTP attempt of a KSeF call; it fits ksef.WithObserver.
func (m *Metrics) ObserveKSeF(c ksef.Call) {
	op := string(c.Operation)
	code := CodeError
	if c.HTTPStatus != 0 {
		code = strconv.Itoa(c.HTTPStatus)
	}
	m.apiRequests.WithLabelValues(op, code).Inc()
	m.apiDuration.WithLabelValues(op).Observe(c.Duration.Seconds())
	if c.Retrying {
		m.apiRetries.WithLabelValues(op).Inc()
	}
	if c.HTTPStatus == http.StatusTooManyRequests {
		m.apiThrottle.WithLabelValues(op).Inc()
	}
}

// KSeFOption is the client option that reports every attempt to m.
func (m *Metrics) KSeFOption() ksef.Option { return ksef.WithObserver(m.ObserveKSeF) }

// LimitWait records a KSeF call that must wait for a request slot of op.
func (m *Metrics) LimitWait(op ksef.Operation) { m.limitWaits.WithLabelValues(string(op)).Inc() }

// StoredBytes adds n bytes stored in bucket.
func (m *Metrics) StoredBytes(bucket string, n int64) {
	if n > 0 {
		m.storageBytes.WithLabelValues(bucket).Add(float64(n))
	}
}

// InvoiceWarned records a validated invoice with n warnings; it fits sender.Config.Warned.
func (m *Metrics) InvoiceWarned(n int) {
	m.invoicesWarned.Inc()
	m.warnings.Add(float64(n))
}

// Session modes of OpenSessions.
const (
	ModeOnline = "online"
	ModeBatch  = "batch"
)

// OpenSessions is the gauge of open KSeF sessions of a mode; the sender's pool calls Inc when it
// opens one and Dec when it closes or forgets one.
func (m *Metrics) OpenSessions(mode string) prometheus.Gauge {
	return m.openSessions.WithLabelValues(mode)
}
