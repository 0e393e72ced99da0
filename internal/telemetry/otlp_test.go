package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestOTLPExport: configured by the standard environment, spans reach an OTLP/HTTP collector.
func TestOTLPExport(t *testing.T) {
	var mu sync.Mutex
	var posts []string
	var bodies int
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		bodies += len(b)
		mu.Unlock()
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	cfg, err := ConfigFromEnv("sender", func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return collector.URL
		}
		return ""
	})
	if err != nil || cfg.Tracing != TracingOTLP {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	tel, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Tracing.Enabled() {
		t.Fatal("tracing off")
	}
	h := tel.Worker("sender", nil).Middleware[0](func(ctx context.Context, m *worker.Message) error { return nil })
	h(context.Background(), &worker.Message{Subject: "invoice.submitted", Header: nats.Header{}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) == 0 || posts[0] != "POST /v1/traces application/x-protobuf" || bodies == 0 {
		t.Fatalf("collector got %v (%d bytes)", posts, bodies)
	}
}

// BenchmarkWorkerHooks is the per-message cost of the telemetry around a handler: the
// middlewares and OnSettled, with tracing off and with spans recorded (and dropped).
func BenchmarkWorkerHooks(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "tracing=off"
		cfg := Config{}
		if traced {
			name = "tracing=on"
			cfg.TracerProvider = newDiscardProvider()
		}
		b.Run(name, func(b *testing.B) {
			tel, err := New(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			hooks := tel.Worker("sender", nil)
			pub := tel.Publisher(nopPublisher{})
			h := worker.Chain(func(ctx context.Context, m *worker.Message) error {
				return pub.Publish(ctx, &events.InvoiceSent{}, nil)
			}, hooks.Middleware...)
			hdr := nats.Header{"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
			b.ReportAllocs()
			for b.Loop() {
				m := &worker.Message{Subject: "invoice.submitted", Header: hdr}
				err := h(context.Background(), m)
				hooks.OnSettled(m, worker.Acked, err, time.Millisecond)
			}
		})
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event, nats.Header) error { return nil }

func newDiscardProvider() *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discard{}))
}

// discard ends spans without exporting them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
