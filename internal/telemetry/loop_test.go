package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// probe GETs url and decodes its report.
func probe(t *testing.T, url string) (int, telemetry.Report) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r telemetry.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode, r
}

// eventually polls until cond holds, failing the test after a deadline.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func accepted(i int) *events.InvoiceAccepted {
	return &events.InvoiceAccepted{
		Meta:            events.Meta{ContextNIP: "5265877635", InvoiceID: fmt.Sprintf("FV/%d", i)},
		KsefNumber:      "5265877635-20260314-0100001AF629-AF",
		AcquisitionDate: events.At(time.Now()),
		SessionID:       "20260314-SO-1",
		InvoiceHash:     "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		XML:             &events.ObjectRef{Bucket: "ksef-invoices", Key: "a.xml", Size: 3},
	}
}

// TestHealthzFollowsTheConsumeLoop runs a real consume loop whose one handler slot hangs: with
// messages waiting and no progress, /healthz fails; once the handler lets go it passes again;
// and once the loop has stopped it fails for good.
func TestHealthzFollowsTheConsumeLoop(t *testing.T) {
	_, url := testenv.NATS(t)
	cfg := natsx.Config{URL: url, SubjectPrefix: "tel"}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := natsx.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	tel, err := telemetry.New(t.Context(), telemetry.Config{StallAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tel.Start("127.0.0.1:0", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	const name = "hanging"
	stream := natsx.StreamName(cfg.SubjectPrefix)
	hooks := tel.Worker(name, func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		c, err := js.Consumer(ctx, stream, name)
		if err != nil {
			return nil, err
		}
		return c.CachedInfo(), nil
	})
	release := make(chan struct{})
	wcfg := worker.Config{Name: name, Subjects: []string{cfg.Subjects().InvoiceAccepted()}, NATS: cfg,
		Concurrency: 1, AckWait: 5 * time.Second, OnSettled: hooks.OnSettled}
	handler := func(ctx context.Context, m *worker.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	hooks.Probe.Running()
	go func() {
		err := worker.Run(ctx, js, wcfg, handler, hooks.Middleware...)
		hooks.Probe.Stopped(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	healthz := srv.URL() + "/healthz"
	if code, r := probe(t, healthz); code != http.StatusOK {
		t.Fatalf("idle loop: %d %+v", code, r)
	}
	// One message takes the only slot, one may wait in the client's buffer, the rest wait on the
	// server (num_pending).
	pub := natsx.NewPublisher(js, cfg)
	for i := range 4 {
		if err := pub.Publish(t.Context(), accepted(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var r telemetry.Report
	eventually(t, 20*time.Second, "healthz failing on a stalled loop", func() bool {
		var code int
		code, r = probe(t, healthz)
		return code == http.StatusServiceUnavailable
	})
	if st := r.Workers[name]; st.State != "running" || st.InFlight != 1 || st.Pending == nil || *st.Pending == 0 ||
		!strings.Contains(r.Down["worker:"+name], "stalled") {
		t.Fatalf("stalled report: %+v", r)
	}

	s, err := telemetry.Scrape(t.Context(), srv.URL()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sum(telemetry.MetricConsumerPending, "worker", name); got < 1 {
		t.Errorf("consumer lag %v while messages wait", got)
	}
	if got := s.Sum(telemetry.MetricConsumerAckPending, "worker", name); got < 1 {
		t.Errorf("ack pending %v while a handler holds a message", got)
	}

	close(release) // every handler returns at once now
	eventually(t, 20*time.Second, "healthz passing once the loop moves", func() bool {
		code, _ := probe(t, healthz)
		return code == http.StatusOK
	})
	eventually(t, 20*time.Second, "four messages acked", func() bool {
		samples, err := telemetry.Scrape(t.Context(), srv.URL()+"/metrics")
		return err == nil && samples.Sum(telemetry.MetricEventsHandled, "worker", name, "outcome", "acked") == 4 &&
			samples.Sum(telemetry.MetricConsumerPending, "worker", name) == 0 &&
			samples.Sum(telemetry.MetricConsumerAckPending, "worker", name) == 0
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the cleanup
	code, r := probe(t, healthz)
	if code != http.StatusServiceUnavailable || r.Workers[name].State != "stopped" {
		t.Fatalf("stopped loop: %d %+v", code, r)
	}
}
