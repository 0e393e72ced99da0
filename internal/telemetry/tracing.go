package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Tracing carries W3C trace context (traceparent, tracestate) from the ERP's event through
// every stage: a worker's middleware continues the trace of the message it handles, the
// publisher puts the current span into the headers of every event published, and KSeF calls
// get client spans.
//
// When tracing is off the spans are no-ops, but the context is still carried: an ERP's
// traceparent reaches the events of every stage unchanged, so a tracing system elsewhere can
// still join them.
type Tracing struct {
	tp       trace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	enabled  bool
	shutdown func(context.Context) error
}

// instrumentation is the tracer's name.
const instrumentation = "github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"

func newTracing(tp trace.TracerProvider, enabled bool, shutdown func(context.Context) error) *Tracing {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	if shutdown == nil {
		shutdown = func(context.Context) error { return nil }
	}
	return &Tracing{tp: tp, tracer: tp.Tracer(instrumentation), prop: propagation.TraceContext{},
		enabled: enabled, shutdown: shutdown}
}

// newOTLPTracing exports spans over OTLP/HTTP; the exporter reads the standard
// OTEL_EXPORTER_OTLP_* variables (endpoint, headers, TLS, timeout) and the SDK reads
// OTEL_TRACES_SAMPLER and OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME.
func newOTLPTracing(ctx context.Context, service string) (*Tracing, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.NewSchemaless(attribute.String("service.name", service)), resource.Environment())
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return newTracing(tp, true, tp.Shutdown), nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.enabled }

// Shutdown flushes and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// Tracer is the pipeline's tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// HeaderCarrier adapts NATS headers to propagation. NATS header names are case-sensitive; the
// W3C names are written in lower case and read in any case.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces key (in any case) with value.
func (c HeaderCarrier) Set(key, value string) {
	for k := range c {
		if strings.EqualFold(k, key) {
			delete(c, k)
		}
	}
	c[key] = []string{value}
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// Extract returns ctx with the remote span context found in hdr.
func (t *Tracing) Extract(ctx context.Context, hdr nats.Header) context.Context {
	if hdr == nil {
		return ctx
	}
	return t.prop.Extract(ctx, HeaderCarrier(hdr))
}

// Inject writes ctx's span context into hdr.
func (t *Tracing) Inject(ctx context.Context, hdr nats.Header) {
	t.prop.Inject(ctx, HeaderCarrier(hdr))
}

// Span attribute keys (OpenTelemetry's messaging and HTTP conventions, and the pipeline's own).
const (
	attrMessagingSystem   = "messaging.system"
	attrDestination       = "messaging.destination.name"
	attrConsumerGroup     = "messaging.consumer.group.name"
	attrOperationType     = "messaging.operation.type"
	attrMessageID         = "messaging.message.id"
	attrDeliveries        = "ksef.deliveries"
	attrWorker            = "ksef.worker"
	attrEventType         = "ksef.event_type"
	attrCorrelationID     = "ksef.correlation_id"
	attrInvoiceID         = "ksef.invoice_id"
	attrOutcome           = "ksef.outcome"
	attrOperation         = "ksef.operation"
	attrHTTPMethod        = "http.request.method"
	attrHTTPStatus        = "http.response.status_code"
	attrServerAddress     = "server.address"
	messagingSystemNATS   = "nats"
	messagingProcess      = "process"
	messagingSend         = "send"
	outcomeSnoozed        = "snoozed"
	outcomeHandlerFailure = "failed"
)

// Middleware opens a consumer span per message handled by worker name, continuing the trace
// whose context the message's headers carry. It goes first (outermost), so the handler's
// publishes and KSeF calls are its children.
func (t *Tracing) Middleware(name string) worker.Middleware {
	return func(next worker.Handler) worker.Handler {
		return func(ctx context.Context, m *worker.Message) error {
			ctx = t.Extract(ctx, m.Header)
			ctx, span := t.tracer.Start(ctx, messagingProcess+" "+m.Subject, trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String(attrMessagingSystem, messagingSystemNATS),
					attribute.String(attrDestination, m.Subject),
					attribute.String(attrConsumerGroup, name),
					attribute.String(attrOperationType, messagingProcess),
					attribute.String(attrWorker, name),
					attribute.Int(attrDeliveries, m.Deliveries),
				))
			defer span.End()
			if !span.IsRecording() {
				return next(ctx, m)
			}
			if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
				span.SetAttributes(attribute.String(attrMessageID, id))
			}
			err := next(ctx, m)
			// The Decode middleware (inside this one) has set the event by now.
			if m.Event != nil {
				c := m.Event.Common()
				span.SetAttributes(attribute.String(attrEventType, m.Event.EventType()),
					attribute.String(attrCorrelationID, c.CorrelationID), attribute.String(attrInvoiceID, c.InvoiceID))
			}
			switch {
			case err == nil:
			case worker.IsSnooze(err):
				span.SetAttributes(attribute.String(attrOutcome, outcomeSnoozed))
			default:
				span.SetAttributes(attribute.String(attrOutcome, outcomeHandlerFailure))
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
	}
}

// tracingPublisher puts the trace context into every event it publishes.
type tracingPublisher struct {
	next worker.Publisher
	t    *Tracing
}

// Publisher returns p publishing every event with the current trace context in its headers
// (traceparent), inside a producer span.
func (t *Tracing) Publisher(p worker.Publisher) worker.Publisher {
	return &tracingPublisher{next: p, t: t}
}

func (p *tracingPublisher) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	ctx, span := p.t.tracer.Start(ctx, messagingSend+" "+ev.EventType(), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String(attrMessagingSystem, messagingSystemNATS),
			attribute.String(attrOperationType, messagingSend),
			attribute.String(attrEventType, ev.EventType()),
		))
	defer span.End()
	if !span.SpanContext().IsValid() {
		return p.next.Publish(ctx, ev, hdr)
	}
	out := make(nats.Header, len(hdr)+2)
	for k, v := range hdr {
		out[k] = v
	}
	p.t.Inject(ctx, out)
	err := p.next.Publish(ctx, ev, out)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// Transport returns next making a client span of every KSeF request, named after the API
// operation. It does not send the trace context to KSeF: the Ministry's service has no use for
// our trace ids.
func (t *Tracing) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if !t.enabled {
		return next
	}
	return &tracingTransport{next: next, t: t}
}

type tracingTransport struct {
	next http.RoundTripper
	t    *Tracing
}

func (tt *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := OperationOf(req.Method, req.URL.Path)
	name := "HTTP " + req.Method
	if op != "" {
		name = "ksef " + string(op)
	}
	ctx, span := tt.t.tracer.Start(req.Context(), name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(attrHTTPMethod, req.Method), attribute.String(attrServerAddress, req.URL.Host)))
	if op != "" {
		span.SetAttributes(attribute.String(attrOperation, string(op)))
	}
	resp, err := tt.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return resp, err
	}
	span.SetAttributes(attribute.Int(attrHTTPStatus, resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	// The answer's body is read by the caller; the span covers the round trip (headers).
	span.End()
	return resp, nil
}

// routes map the API's paths (after the "/v2/" of any base URL) to operations. Parameters are
// "*"; every other segment must match.
var routes = []struct {
	method string
	path   []string
	op     ksef.Operation
}{
	{http.MethodGet, []string{"public-key"}, ksef.OpPublicKey},
	{http.MethodPost, []string{"sessions", "online"}, ksef.OpSessionOpenOnline},
	{http.MethodPost, []string{"sessions", "batch"}, ksef.OpSessionOpenBatch},
	{http.MethodGet, []string{"sessions", "*", "close"}, ksef.OpSessionClose},
	{http.MethodGet, []string{"sessions", "*", "upo"}, ksef.OpSessionUpo},
	{http.MethodGet, []string{"sessions", "*", "invoices"}, ksef.OpSessionInvoices},
	{http.MethodGet, []string{"sessions", "*"}, ksef.OpSessionStatus},
	{http.MethodPost, []string{"invoices", "send"}, ksef.OpInvoiceSend},
	{http.MethodPost, []string{"invoices", "generate"}, ksef.OpInvoiceGenerate},
	{http.MethodPost, []string{"invoices", "validate"}, ksef.OpInvoiceValidate},
	{http.MethodPost, []string{"invoices", "visualize"}, ksef.OpInvoiceVisualize},
	{http.MethodGet, []string{"invoices", "status", "*"}, ksef.OpInvoiceStatus},
	{http.MethodGet, []string{"invoices", "ksef", "*"}, ksef.OpInvoiceGet},
	{http.MethodPost, []string{"queries"}, ksef.OpInvoiceQueryStart},
	{http.MethodGet, []string{"queries", "*", "parts", "*"}, ksef.OpInvoiceQueryResult},
	{http.MethodGet, []string{"queries", "*"}, ksef.OpInvoiceQueryStatus},
}

// OperationOf names the KSeF operation of a request ("" when the path is not one of the API's;
// a batch part upload goes to a URL KSeF chose and is a PUT).
func OperationOf(method, path string) ksef.Operation {
	if method == http.MethodPut {
		return ksef.OpBatchPartUpload
	}
	i := strings.Index(path, "/v2/")
	if i < 0 {
		return ""
	}
	segs := strings.Split(strings.Trim(path[i+len("/v2/"):], "/"), "/")
next:
	for _, r := range routes {
		if r.method != method || len(r.path) != len(segs) {
			continue
		}
		for j, s := range r.path {
			if s != "*" && s != segs[j] {
				continue next
			}
		}
		return r.op
	}
	return ""
}

// errTracingConfig reports a bad tracing setting.
var errTracingConfig = errors.New("telemetry: tracing")
