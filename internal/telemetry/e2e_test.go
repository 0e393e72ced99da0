package telemetry_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// testLog sends a log to the test's log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func newTestLog(t *testing.T) zerolog.Logger {
	w := &testLog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return zerolog.New(w).Level(zerolog.WarnLevel).With().Timestamp().Logger()
}

// stack is a whole pipeline with its telemetry: a real NATS server (restartable on the same
// port and store), the KSeF emulator over loopback HTTP, local storage, and the runtime whose
// telemetry server the test scrapes.
type stack struct {
	t       *testing.T
	natsDir string
	port    int
	ns      *server.Server
	rt      *pipeline.Runtime
	tel     *telemetry.Telemetry
	srv     *telemetry.Server
	spans   *tracetest.InMemoryExporter
}

func startStack(t *testing.T) *stack {
	t.Helper()
	st := &stack{t: t, natsDir: filepath.Join(t.TempDir(), "nats")}
	st.startNATS(-1)
	st.port = st.ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() {
		if st.ns != nil {
			st.ns.Shutdown()
			st.ns.WaitForShutdown()
		}
	})

	tokens := demo.Tokens()
	emTokens := map[string]string{}
	for nip, token := range tokens {
		emTokens[token] = nip
	}
	em, err := emulator.New(emulator.Config{Tokens: emTokens, SchemaDir: testenv.SchemaDir(t), DataDir: t.TempDir(), TempDir: t.TempDir(),
		ProcessingDelay: 50 * time.Millisecond, StorageDelay: 100 * time.Millisecond, Limits: emulator.LimitConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	api := httptest.NewServer(em.Handler())
	t.Cleanup(api.Close)

	s := pipeline.Settings{
		NATS:    natsx.Config{URL: st.ns.ClientURL()},
		Storage: storage.Config{Backend: "local", Dir: t.TempDir(), Buckets: storage.DefaultBuckets()},
		KSeF: ksefconn.Settings{APIURL: api.URL, Tokens: ksefconn.Tokens(maps.Clone(tokens)), Limits: "off", LimitMultiplier: 1,
			LimitHeadroom: 1, MaxLimitWait: 10 * time.Second, RequestTimeout: 30 * time.Second},
		SchemaDir:         testenv.SchemaDir(t),
		AckWait:           10 * time.Second,
		SessionCloseIdle:  time.Second, // the session closes soon after the last send
		VisualizeAccepted: true,
		VisualizeFormat:   events.FormatPDF,
		VisualizeLanguage: events.LangPL,
	}
	s.Batch.Disabled = true

	st.spans = tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(st.spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	if st.tel, err = telemetry.New(t.Context(), telemetry.Config{TracerProvider: tp}); err != nil {
		t.Fatal(err)
	}
	if st.srv, err = st.tel.Start("127.0.0.1:0", zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.srv.Shutdown(context.Background()) })
	if st.rt, err = pipeline.OpenWithTelemetry(t.Context(), s, newTestLog(t), st.tel); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.rt.Close)
	return st
}

func (st *stack) startNATS(port int) {
	st.t.Helper()
	ns, err := natsserver.Run(natsserver.Options{Dir: st.natsDir, Port: port})
	if err != nil {
		st.t.Fatal(err)
	}
	st.ns = ns
}

func (st *stack) stopNATS() {
	st.ns.Shutdown()
	st.ns.WaitForShutdown()
	st.ns = nil
}

// run starts every worker; the returned stop cancels them and waits for the drain.
func (st *stack) run() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.rt.Run(ctx, pipeline.Workers()...) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				st.t.Error("workers did not drain within a minute")
			}
		})
		return err
	}
	st.t.Cleanup(func() { stop() })
	return stop
}

func (st *stack) scrape() telemetry.Samples {
	st.t.Helper()
	s, err := telemetry.Scrape(st.t.Context(), st.srv.URL()+"/metrics")
	if err != nil {
		st.t.Fatal(err)
	}
	return s
}

// submit publishes an invoice.submitted of seller's n-th demo invoice, as an ERP would, with
// hdr (a traceparent, or nil).
func (st *stack) submit(ctx context.Context, seller string, n int, hdr nats.Header) string {
	st.t.Helper()
	req := demo.Request(seller, n, time.Now())
	data, err := json.Marshal(req)
	if err != nil {
		st.t.Fatal(err)
	}
	ev := &events.InvoiceSubmitted{Generate: data, Visualize: true}
	ev.InvoiceID, ev.ContextNIP = req.InvoiceNumber, seller
	if err := st.rt.Publisher.Publish(ctx, ev, hdr); err != nil {
		st.t.Fatal(err)
	}
	return ev.InvoiceID
}

// TestPipelineTelemetry runs invoices through the whole pipeline and reads its telemetry as an
// operator would: counters moved by what happened, one trace per invoice from the ERP's event
// to its visualization, readiness following NATS down and up, liveness following the workers.
func TestPipelineTelemetry(t *testing.T) {
	st := startStack(t)
	readyz, healthz := st.srv.URL()+"/readyz", st.srv.URL()+"/healthz"
	eventually(t, 20*time.Second, "ready", func() bool { code, _ := probe(t, readyz); return code == http.StatusOK })
	stop := st.run()
	eventually(t, 20*time.Second, "alive", func() bool { code, _ := probe(t, healthz); return code == http.StatusOK })

	subj := st.rt.Settings.NATS.Subjects()
	base := st.scrape()
	if got := base.Sum(telemetry.MetricAPIRequests, "operation", "ksefInvoiceSend"); got != 0 {
		t.Fatalf("sends before any invoice: %v", got)
	}

	// Each invoice comes with the ERP's own trace context.
	const n = 3
	seller := demo.Sellers[0]
	erpTracer := st.tel.Tracing.Tracer()
	traces := map[string]trace.TraceID{} // invoice id -> the ERP's trace
	for i := 1; i <= n; i++ {
		ctx, span := erpTracer.Start(context.Background(), "erp submit")
		hdr := nats.Header{}
		st.tel.Tracing.Inject(ctx, hdr)
		id := st.submit(ctx, seller, i, hdr)
		traces[id] = span.SpanContext().TraceID()
		span.End()
	}

	var s telemetry.Samples
	defer func() {
		if t.Failed() {
			t.Logf("metrics:\n%s", s)
		}
	}()
	eventually(t, 90*time.Second, "every invoice accepted and visualized", func() bool {
		s = st.scrape()
		return s.Sum(telemetry.MetricEventsHandled, "worker", pipeline.Visualizer, "subject", subj.InvoiceAccepted(), "outcome", "acked") >= n
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{telemetry.MetricEventsHandled, []string{"worker", pipeline.Sender, "subject", subj.InvoiceSubmitted(), "outcome", "acked"}, n},
		{telemetry.MetricEventsHandled, []string{"worker", pipeline.Poller, "subject", subj.InvoiceSent(), "outcome", "acked"}, n},
		{telemetry.MetricEventsHandled, []string{"worker", pipeline.Visualizer, "subject", subj.InvoiceAccepted(), "outcome", "acked"}, n},
		{telemetry.MetricEventsHandled, []string{"outcome", "dead_lettered"}, 0},
		{telemetry.MetricDeadLetters, nil, 0},
		{telemetry.MetricAPIRequests, []string{"operation", "ksefInvoiceSend", "code", "200"}, n},
		{telemetry.MetricAPIRequests, []string{"operation", "ksefInvoiceSend"}, n},
		{telemetry.MetricAPIDuration, []string{"operation", "ksefInvoiceSend"}, n},
		{telemetry.MetricAPIThrottled, nil, 0},
		{telemetry.MetricRateLimitWaits, nil, 0}, // limits are off
		{telemetry.MetricConsumerPending, []string{"worker", pipeline.Sender}, 0},
	} {
		if got := s.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := s.Sum(telemetry.MetricAPIRequests, "operation", "ksefSessionOpenOnline", "code", "200"); got < 1 {
		t.Errorf("no session opened: %v", got)
	}
	for _, dep := range []string{"nats", "storage", "ksef"} {
		if got := s.Sum(telemetry.MetricDependencyUp, "dependency", dep); got != 1 {
			t.Errorf("%s{dependency=%q} = %v, want 1", telemetry.MetricDependencyUp, dep, got)
		}
	}
	if got := s.Sum(telemetry.MetricWorkerAlive); got != float64(len(pipeline.Workers())) {
		t.Errorf("%s = %v, want every worker alive", telemetry.MetricWorkerAlive, got)
	}
	if got := len(s.LabelValues(telemetry.MetricConsumerPending, "worker")); got != len(pipeline.Workers()) {
		t.Errorf("consumer lag of %d workers, want every worker's", got)
	}
	if got := s.Sum(telemetry.MetricHandlerDuration, "worker", pipeline.Sender); got < n {
		t.Errorf("sender handler durations observed %v times, want at least %d", got, n)
	}
	// The sender closes its idle session: the gauge goes back to zero and a UPO is stored.
	eventually(t, 30*time.Second, "the session closed and its UPO stored", func() bool {
		s = st.scrape()
		return s.Sum(telemetry.MetricAPIRequests, "operation", "ksefSessionClose", "code", "200") >= 1 &&
			s.Sum(telemetry.MetricOpenSessions, "mode", telemetry.ModeOnline) == 0 &&
			s.Sum(telemetry.MetricEventsHandled, "worker", pipeline.Poller, "subject", subj.SessionClosed(), "outcome", "acked") >= 1
	})
	// Bytes stored are the bytes in the buckets (nothing here is stored twice).
	b := st.rt.Settings.Storage.Buckets
	for _, bucket := range []string{b.Invoices, b.UPO, b.Visualizations} {
		var size int64
		for info, err := range st.rt.Store.List(t.Context(), bucket, "") {
			if err != nil {
				t.Fatal(err)
			}
			size += info.Size
		}
		if got := s.Sum(telemetry.MetricStorageBytes, "bucket", bucket); size == 0 || got != float64(size) {
			t.Errorf("%s: %s = %v, objects hold %d bytes", bucket, telemetry.MetricStorageBytes, got, size)
		}
	}
	checkTraces(t, st.spans.GetSpans(), traces)

	// NATS goes away: not ready, naming NATS; back on the same port and store: ready again, and
	// the workers carry on.
	st.stopNATS()
	var r telemetry.Report
	eventually(t, 20*time.Second, "not ready without NATS", func() bool {
		var code int
		code, r = probe(t, readyz)
		return code == http.StatusServiceUnavailable
	})
	if r.Down["nats"] == "" || r.Down["storage"] != "" || r.Down["ksef"] != "" {
		t.Errorf("readyz without NATS: %+v, want only nats down", r)
	}
	if s = st.scrape(); s.Sum(telemetry.MetricDependencyUp, "dependency", "nats") != 0 || s.Sum(telemetry.MetricDependencyUp, "dependency", "storage") != 1 {
		t.Errorf("dependency metrics without NATS:\n%s", s)
	}
	st.startNATS(st.port)
	eventually(t, 30*time.Second, "ready again", func() bool { code, _ := probe(t, readyz); return code == http.StatusOK })
	st.submit(context.Background(), seller, n+1, nil)
	eventually(t, 60*time.Second, "an invoice accepted after the outage", func() bool {
		s = st.scrape()
		return s.Sum(telemetry.MetricEventsHandled, "worker", pipeline.Poller, "subject", subj.InvoiceSent(), "outcome", "acked") == n+1
	})
	if got := s.Sum(telemetry.MetricAPIRequests, "operation", "ksefInvoiceSend", "code", "200"); got != n+1 {
		t.Errorf("sends after the outage: %v, want %d", got, n+1)
	}
	if code, r := probe(t, healthz); code != http.StatusOK {
		t.Errorf("healthz after the outage: %d %+v", code, r)
	}

	// The workers stop (a drain): the process is no longer alive.
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	code, r := probe(t, healthz)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the workers stopped: %d %+v", code, r)
	}
	for _, w := range pipeline.Workers() {
		if r.Workers[w].State != "stopped" {
			t.Errorf("worker %s: %+v, want stopped", w, r.Workers[w])
		}
	}
	if got := st.scrape().Sum(telemetry.MetricWorkerAlive); got != 0 {
		t.Errorf("%s = %v with every worker stopped", telemetry.MetricWorkerAlive, got)
	}
}

// checkTraces: each invoice's way (sender, KSeF send, poller, visualizer, and the events
// between them) is in the trace its ERP started.
func checkTraces(t *testing.T, spans tracetest.SpanStubs, traces map[string]trace.TraceID) {
	t.Helper()
	byTrace := map[trace.TraceID][]tracetest.SpanStub{}
	for _, s := range spans {
		byTrace[s.SpanContext.TraceID()] = append(byTrace[s.SpanContext.TraceID()], s)
	}
	for id, tid := range traces {
		names := map[string]int{}
		for _, s := range byTrace[tid] {
			names[s.Name]++
			for _, kv := range s.Attributes {
				if kv.Key == "ksef.invoice_id" && kv.Value.AsString() != id {
					t.Errorf("invoice %s: trace holds a span of invoice %s", id, kv.Value.AsString())
				}
			}
		}
		for _, want := range []string{
			"process invoice.submitted", "ksef ksefInvoiceSend", "send invoice.sent",
			"process invoice.sent", "ksef ksefInvoiceStatus", "send invoice.accepted",
			"process invoice.accepted", "send invoice.visualized",
		} {
			if names[want] == 0 {
				t.Errorf("invoice %s: no %q span in its trace (spans: %v)", id, want, names)
			}
		}
	}
}
