package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

func TestOperationOf(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         ksef.Operation
	}{
		{"GET", "/v2/public-key", ksef.OpPublicKey},
		{"POST", "/api/v2/sessions/online", ksef.OpSessionOpenOnline},
		{"POST", "/v2/sessions/batch", ksef.OpSessionOpenBatch},
		{"GET", "/v2/sessions/20261125-SO-1/close", ksef.OpSessionClose},
		{"GET", "/v2/sessions/20261125-SO-1/upo", ksef.OpSessionUpo},
		{"GET", "/v2/sessions/20261125-SO-1/invoices", ksef.OpSessionInvoices},
		{"GET", "/v2/sessions/20261125-SO-1", ksef.OpSessionStatus},
		{"POST", "/v2/invoices/send", ksef.OpInvoiceSend},
		{"POST", "/v2/invoices/generate", ksef.OpInvoiceGenerate},
		{"POST", "/v2/invoices/validate", ksef.OpInvoiceValidate},
		{"POST", "/v2/invoices/visualize", ksef.OpInvoiceVisualize},
		{"GET", "/v2/invoices/status/abc", ksef.OpInvoiceStatus},
		{"GET", "/v2/invoices/ksef/5261040828-20261125-0123456789AB-CD", ksef.OpInvoiceGet},
		{"POST", "/v2/queries", ksef.OpInvoiceQueryStart},
		{"GET", "/v2/queries/q1", ksef.OpInvoiceQueryStatus},
		{"GET", "/v2/queries/q1/parts/2", ksef.OpInvoiceQueryResult},
		{"PUT", "/upload/part/1?sig=x", ksef.OpBatchPartUpload},
		{"GET", "/v2/invoices/send", ""},
		{"GET", "/healthz", ""},
		{"DELETE", "/v2/sessions/x", ""},
	} {
		if got := OperationOf(c.method, c.path); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	h := nats.Header{"Traceparent": {"a"}, "Nats-Msg-Id": {"x"}}
	c := HeaderCarrier(h)
	if got := c.Get("traceparent"); got != "a" {
		t.Errorf("Get in another case = %q", got)
	}
	c.Set("traceparent", "b")
	if len(h) != 2 || h.Get("traceparent") != "b" || h.Get("Traceparent") != "" {
		t.Errorf("Set did not replace the other case: %v", h)
	}
}

// recordingPublisher keeps what it was asked to publish.
type recordingPublisher struct {
	mu   sync.Mutex
	hdrs []nats.Header
	ctxs []context.Context
}

func (p *recordingPublisher) Publish(ctx context.Context, _ events.Event, hdr nats.Header) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hdrs = append(p.hdrs, hdr)
	p.ctxs = append(p.ctxs, ctx)
	return nil
}

func newRecorder() (*Tracing, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	return newTracing(tp, true, tp.Shutdown), exp
}

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	t.Fatalf("no span %q among %v", name, names)
	return tracetest.SpanStub{}
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTraceCrossesAMessage: a handler's publish carries its span in traceparent, and the next
// worker's span continues that trace as the publish span's child.
func TestTraceCrossesAMessage(t *testing.T) {
	tr, exp := newRecorder()
	rec := &recordingPublisher{}
	pub := tr.Publisher(rec)

	// The ERP's span, then the sender's handling of its event.
	ctx, erp := tr.Tracer().Start(context.Background(), "erp submit")
	hdr := nats.Header{}
	tr.Inject(ctx, hdr)
	erp.End()
	if !strings.HasPrefix(hdr.Get("traceparent"), "00-"+erp.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q", hdr.Get("traceparent"))
	}
	sent := &events.InvoiceSent{Meta: events.Meta{InvoiceID: "FV/1", CorrelationID: "c1"}}
	sender := tr.Middleware("sender")(func(ctx context.Context, m *worker.Message) error {
		m.Event = &events.InvoiceSubmitted{Meta: events.Meta{InvoiceID: "FV/1", CorrelationID: "c1"}}
		return pub.Publish(ctx, sent, nats.Header{"X-Other": {"kept"}})
	})
	if err := sender(context.Background(), &worker.Message{Subject: "invoice.submitted", Header: hdr, Deliveries: 1}); err != nil {
		t.Fatal(err)
	}
	if len(rec.hdrs) != 1 || rec.hdrs[0].Get("X-Other") != "kept" || rec.hdrs[0].Get("traceparent") == "" {
		t.Fatalf("published headers %v", rec.hdrs)
	}
	// The poller snoozes the invoice once, then fails it.
	poller := tr.Middleware("poller")(func(ctx context.Context, m *worker.Message) error {
		m.Event = sent
		if m.Deliveries == 1 {
			return worker.Snooze(time.Second)
		}
		return errors.New("status 500")
	})
	for d := 1; d <= 2; d++ {
		poller(context.Background(), &worker.Message{Subject: "invoice.sent", Header: rec.hdrs[0], Deliveries: d})
	}

	spans := exp.GetSpans()
	traceID := erp.SpanContext().TraceID()
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	proc := spanNamed(t, spans, "process invoice.submitted")
	send := spanNamed(t, spans, "send invoice.sent")
	if proc.SpanKind != trace.SpanKindConsumer || proc.Parent.SpanID() != erp.SpanContext().SpanID() {
		t.Errorf("sender span: kind %v parent %v", proc.SpanKind, proc.Parent.SpanID())
	}
	if send.SpanKind != trace.SpanKindProducer || send.Parent.SpanID() != proc.SpanContext.SpanID() {
		t.Errorf("publish span: kind %v, parent %v, want the sender's span", send.SpanKind, send.Parent.SpanID())
	}
	if got := attr(proc, "ksef.invoice_id").AsString(); got != "FV/1" {
		t.Errorf("invoice id attribute %q", got)
	}
	var polls []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "process invoice.sent" {
			polls = append(polls, s)
		}
	}
	if len(polls) != 2 {
		t.Fatalf("%d poller spans, want 2", len(polls))
	}
	for _, p := range polls {
		if p.Parent.SpanID() != send.SpanContext.SpanID() {
			t.Errorf("poller span's parent %v, want the publish span", p.Parent.SpanID())
		}
		switch attr(p, "ksef.deliveries").AsInt64() {
		case 1:
			if p.Status.Code == codes.Error || attr(p, "ksef.outcome").AsString() != "snoozed" {
				t.Errorf("snoozed delivery: status %v outcome %q", p.Status, attr(p, "ksef.outcome").AsString())
			}
		case 2:
			if p.Status.Code != codes.Error {
				t.Errorf("failed delivery: status %v", p.Status)
			}
		}
	}
}

// TestContextPassesThroughWithTracingOff: with no tracer, an incoming traceparent still reaches
// the events a handler publishes.
func TestContextPassesThroughWithTracingOff(t *testing.T) {
	tr := newTracing(nil, false, nil)
	rec := &recordingPublisher{}
	pub := tr.Publisher(rec)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := tr.Middleware("sender")(func(ctx context.Context, m *worker.Message) error {
		return pub.Publish(ctx, &events.InvoiceSent{}, nil)
	})
	h(context.Background(), &worker.Message{Subject: "invoice.submitted", Header: nats.Header{"traceparent": {tp}}})
	if got := rec.hdrs[0].Get("traceparent"); got != tp {
		t.Errorf("traceparent %q, want %q passed through", got, tp)
	}
	// Without an incoming context nothing is added.
	h(context.Background(), &worker.Message{Subject: "invoice.submitted", Header: nats.Header{}})
	if rec.hdrs[1] != nil {
		t.Errorf("headers %v published without any trace", rec.hdrs[1])
	}
}

func TestTransportSpans(t *testing.T) {
	tr, exp := newRecorder()
	var sawTraceparent bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTraceparent = r.Header.Get("traceparent") != ""
		if r.URL.Path == "/v2/invoices/send" {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: tr.Transport(nil)}
	ctx, parent := tr.Tracer().Start(context.Background(), "handler")
	for _, path := range []string{"/v2/public-key", "/v2/invoices/send"} {
		method := http.MethodGet
		if path == "/v2/invoices/send" {
			method = http.MethodPost
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	parent.End()
	if sawTraceparent {
		t.Error("the trace context was sent to KSeF")
	}
	spans := exp.GetSpans()
	key := spanNamed(t, spans, "ksef ksefPublicKey")
	send := spanNamed(t, spans, "ksef ksefInvoiceSend")
	if key.Parent.SpanID() != parent.SpanContext().SpanID() || key.SpanKind != trace.SpanKindClient {
		t.Errorf("client span parent %v kind %v", key.Parent.SpanID(), key.SpanKind)
	}
	if attr(send, "http.response.status_code").AsInt64() != 429 || send.Status.Code != codes.Error {
		t.Errorf("429 span: %v %v", attr(send, "http.response.status_code"), send.Status)
	}
	if off := newTracing(nil, false, nil); off.Transport(http.DefaultTransport) != http.DefaultTransport {
		t.Error("tracing off still wraps the transport")
	}
}
