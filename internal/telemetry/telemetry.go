// Package telemetry is the pipeline's operations telemetry: Prometheus metrics (in a registry
// of their own), liveness and readiness probes, and OpenTelemetry tracing carried through NATS
// headers, served on a port of their own:
//
//	/metrics  Prometheus exposition
//	/healthz  liveness: every worker's consume loop runs and is not stalled
//	/readyz   readiness: NATS connected, storage and KSeF reachable
//
// The runtime (package pipeline) wires it in: worker middleware and OnSettled, the KSeF client
// observer and transport, a counting storage decorator, a trace-injecting publisher and the
// sender's open-session gauge. docs/operations.md lists every metric and the runbook.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Environment variables.
const (
	// EnvHTTPAddr is the probes' and metrics' listen address (default DefaultHTTPAddr); "off"
	// disables the server.
	EnvHTTPAddr = "KSEF_HTTP_ADDR"
	// EnvTracing is "otlp" (export spans over OTLP/HTTP) or "off". Unset, tracing is on when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
	EnvTracing = "KSEF_TRACING"
	// EnvStallAfter is how long a worker may make no progress while messages wait before
	// /healthz fails (default DefaultStallAfter).
	EnvStallAfter = "KSEF_STALL_AFTER"
)

// DefaultHTTPAddr is where the probes and metrics are served by default.
const DefaultHTTPAddr = ":9090"

// Tracing modes.
const (
	TracingOff  = "off"
	TracingOTLP = "otlp"
)

// Config configures the telemetry of one process.
type Config struct {
	// HTTPAddr is the listen address of /metrics, /healthz and /readyz; "" serves none.
	HTTPAddr string
	// HTTPAddrDefault says HTTPAddr is the default, not a choice: when it cannot be bound (two
	// services on one host), the service runs on without the server, with a warning.
	HTTPAddrDefault bool
	// Tracing is TracingOff or TracingOTLP.
	Tracing string
	// Service names the process in traces (service.name); OTEL_SERVICE_NAME overrides it.
	Service string
	// StallAfter: see WorkerProbe (0: DefaultStallAfter).
	StallAfter time.Duration
	// TracerProvider, when set, records the spans instead of Tracing's exporter (tests use
	// an in-memory exporter).
	TracerProvider trace.TracerProvider
}

// ConfigFromEnv reads the configuration of service from the environment.
func ConfigFromEnv(service string, getenv func(string) string) (Config, error) {
	c := Config{HTTPAddr: DefaultHTTPAddr, Tracing: TracingOff, Service: service}
	var errs []error
	switch v := strings.TrimSpace(getenv(EnvHTTPAddr)); strings.ToLower(v) {
	case "":
		c.HTTPAddrDefault = true
	case "off", "none", "false", "-":
		c.HTTPAddr = ""
	default:
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: want host:port or off, got %q", EnvHTTPAddr, v))
		}
		c.HTTPAddr = v
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvTracing))); v {
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			c.Tracing = TracingOTLP
		}
	case TracingOTLP:
		c.Tracing = TracingOTLP
	case TracingOff, "none", "false":
	default:
		errs = append(errs, fmt.Errorf("%s: want otlp or off, got %q", EnvTracing, v))
	}
	// The SDK's own switches win.
	if disabled, _ := strconv.ParseBool(getenv("OTEL_SDK_DISABLED")); disabled || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		c.Tracing = TracingOff
	}
	if v := getenv(EnvStallAfter); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration, got %q", EnvStallAfter, v))
		}
		c.StallAfter = d
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("telemetry: %w", err)
	}
	return c, nil
}

// Telemetry is one process's metrics, health and tracing.
type Telemetry struct {
	Metrics *Metrics
	Health  *Health
	Tracing *Tracing
	cfg     Config
}

// New builds the telemetry of cfg. Shutdown flushes its spans.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{Metrics: NewMetrics(), Health: NewHealth(cfg.StallAfter), cfg: cfg}
	t.Metrics.reg.MustRegister(healthCollector{t.Health})
	switch {
	case cfg.TracerProvider != nil:
		t.Tracing = newTracing(cfg.TracerProvider, true, nil)
	case cfg.Tracing == TracingOTLP:
		tr, err := newOTLPTracing(ctx, cfg.Service)
		if err != nil {
			return nil, err
		}
		t.Tracing = tr
	case cfg.Tracing == "" || cfg.Tracing == TracingOff:
		t.Tracing = newTracing(nil, false, nil)
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", errTracingConfig, cfg.Tracing)
	}
	return t, nil
}

// Default is telemetry with metrics and health but no tracing and no server, for runtimes
// opened without any.
func Default() *Telemetry {
	t, _ := New(context.Background(), Config{})
	return t
}

// Config is the configuration t was built with.
func (t *Telemetry) Config() Config { return t.cfg }

// Shutdown flushes pending spans and stops the exporter.
func (t *Telemetry) Shutdown(ctx context.Context) error { return t.Tracing.Shutdown(ctx) }

// KSeFOptions are the options that report every KSeF client's attempts.
func (t *Telemetry) KSeFOptions() []ksef.Option { return []ksef.Option{t.Metrics.KSeFOption()} }

// WorkerHooks are what a worker needs to report to the telemetry.
type WorkerHooks struct {
	// Middleware goes first in the worker's chain: the span of the message, and in-flight
	// tracking for liveness.
	Middleware []worker.Middleware
	// OnSettled is worker.Config.OnSettled: metrics and liveness.
	OnSettled func(m *worker.Message, o worker.Outcome, err error, elapsed time.Duration)
	// Probe is the worker's liveness probe; the runner calls Running and Stopped.
	Probe *WorkerProbe
}

// Worker registers worker name for liveness and consumer metrics and returns its hooks. info
// (may be nil) looks up the worker's consumer.
func (t *Telemetry) Worker(name string, info ConsumerInfo) WorkerHooks {
	var pending func(ctx context.Context) (uint64, error)
	if info != nil {
		t.Metrics.Consumer(name, info)
		pending = func(ctx context.Context) (uint64, error) {
			ci, err := info(ctx)
			if err != nil {
				return 0, err
			}
			return ci.NumPending, nil
		}
	}
	probe := t.Health.Worker(name, pending)
	settled := t.Metrics.Settled(name)
	return WorkerHooks{
		Middleware: []worker.Middleware{t.Tracing.Middleware(name), probe.Middleware()},
		OnSettled: func(m *worker.Message, o worker.Outcome, err error, elapsed time.Duration) {
			settled(m, o, err, elapsed)
			probe.Settled()
		},
		Probe: probe,
	}
}

// Publisher returns p with the trace context injected into every event's headers.
func (t *Telemetry) Publisher(p worker.Publisher) worker.Publisher { return t.Tracing.Publisher(p) }

// Handler serves /metrics, /healthz and /readyz.
func (t *Telemetry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.Metrics.Handler())
	mux.Handle("GET /healthz", t.Health.LiveHandler())
	mux.Handle("GET /readyz", t.Health.ReadyHandler())
	return mux
}

// Server is the running telemetry HTTP server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve listens on addr and serves h until Shutdown.
func Serve(addr string, h http.Handler, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: listening on %s: %w", addr, err)
	}
	s := &Server{ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			log.Error().Err(err).Msg("telemetry server failed")
		}
		s.done <- err
	}()
	return s, nil
}

// Start serves t.Handler on addr.
func (t *Telemetry) Start(addr string, log zerolog.Logger) (*Server, error) {
	return Serve(addr, t.Handler(), log)
}

// Addr is the address the server listens on (with the port chosen for ":0").
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is the server's base URL, e.g. http://127.0.0.1:9090.
func (s *Server) URL() string {
	a := s.ln.Addr().(*net.TCPAddr)
	host := "127.0.0.1"
	if !a.IP.IsUnspecified() {
		host = a.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// Shutdown stops the server, letting running requests finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}
