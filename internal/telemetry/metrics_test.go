package telemetry

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// scrape reads m over HTTP, as Prometheus would.
func scrape(t *testing.T, m *Metrics) Samples {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s, err := Scrape(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSettledCountsOutcomesAndDeadLetterKinds(t *testing.T) {
	m := NewMetrics()
	const subj = "invoice.submitted"
	settled := m.Settled("sender")
	msg := &worker.Message{Subject: subj}
	for _, c := range []struct {
		o   worker.Outcome
		err error
	}{
		{worker.Acked, nil},
		{worker.Acked, nil},
		{worker.Snoozed, worker.Snooze(time.Second)},
		{worker.Retried, errors.New("boom")},
		{worker.DeadLettered, worker.Permanent(errors.New("bad"))},
		{worker.DeadLettered, worker.DeadLetter(events.KindMalformed, errors.New("garbage"))},
		{worker.DeadLettered, errors.New("fifth failure")},
		{worker.DeadLettered, &worker.PanicError{Value: "x"}},
	} {
		settled(msg, c.o, c.err, 250*time.Millisecond)
	}
	m.Settled("poller")(&worker.Message{Subject: "invoice.sent"}, worker.Acked, nil, time.Second)

	s := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{MetricEventsHandled, []string{"worker", "sender", "subject", subj, "outcome", "acked"}, 2},
		{MetricEventsHandled, []string{"worker", "sender", "outcome", "snoozed"}, 1},
		{MetricEventsHandled, []string{"worker", "sender", "outcome", "retried"}, 1},
		{MetricEventsHandled, []string{"worker", "sender", "outcome", "dead_lettered"}, 4},
		{MetricEventsHandled, []string{"worker", "poller", "subject", "invoice.sent", "outcome", "acked"}, 1},
		{MetricHandlerDuration, []string{"worker", "sender", "subject", subj}, 8},
		{MetricDeadLetters, []string{"worker", "sender", "kind", "permanent"}, 1},
		{MetricDeadLetters, []string{"worker", "sender", "kind", "malformed"}, 1},
		{MetricDeadLetters, []string{"worker", "sender", "kind", "max_deliver"}, 1},
		{MetricDeadLetters, []string{"worker", "sender", "kind", "panic"}, 1},
		{MetricDeadLetters, []string{"worker", "poller"}, 0},
	} {
		if got := s.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v\n%s", c.name, c.labels, got, c.want, s)
		}
	}
}

func TestObserveKSeF(t *testing.T) {
	m := NewMetrics()
	send, status := ksef.OpInvoiceSend, ksef.OpInvoiceStatus
	for _, c := range []ksef.Call{
		{Operation: send, Attempt: 1, HTTPStatus: 200, Duration: 40 * time.Millisecond},
		{Operation: send, Attempt: 1, HTTPStatus: 429, Retrying: true},
		{Operation: send, Attempt: 2, HTTPStatus: 200},
		{Operation: status, Attempt: 1, Err: errors.New("connection refused"), Retrying: true},
		{Operation: status, Attempt: 2, HTTPStatus: 503, Retrying: true},
		{Operation: status, Attempt: 3, HTTPStatus: 429},
	} {
		m.ObserveKSeF(c)
	}
	m.LimitWait(send)
	m.LimitWait(send)

	s := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{MetricAPIRequests, []string{"operation", string(send), "code", "200"}, 2},
		{MetricAPIRequests, []string{"operation", string(send), "code", "429"}, 1},
		{MetricAPIRequests, []string{"operation", string(status), "code", CodeError}, 1},
		{MetricAPIRequests, []string{"operation", string(status), "code", "503"}, 1},
		{MetricAPIRequests, []string{"operation", string(status)}, 3},
		{MetricAPIDuration, []string{"operation", string(send)}, 3},
		{MetricAPIRetries, []string{"operation", string(send)}, 1},
		{MetricAPIRetries, []string{"operation", string(status)}, 2},
		{MetricAPIThrottled, []string{"operation", string(send)}, 1},
		{MetricAPIThrottled, []string{"operation", string(status)}, 1},
		{MetricRateLimitWaits, []string{"operation", string(send)}, 2},
		{MetricRateLimitWaits, []string{"operation", string(status)}, 0},
	} {
		if got := s.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v\n%s", c.name, c.labels, got, c.want, s)
		}
	}
}

func TestStoreCountsStoredBytes(t *testing.T) {
	m := NewMetrics()
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := m.Store(local)
	if err := st.EnsureBuckets(ctx, "ksef-invoices", "ksef-upo"); err != nil {
		t.Fatal(err)
	}
	put := func(bucket, key, body string, size int64) error {
		_, err := st.Put(ctx, bucket, key, strings.NewReader(body), size, storage.ObjectMeta{})
		return err
	}
	if err := put("ksef-invoices", "a.xml", "12345", 5); err != nil {
		t.Fatal(err)
	}
	if err := put("ksef-invoices", "b.xml", "1234567", -1); err != nil { // size unknown: counted as streamed
		t.Fatal(err)
	}
	if err := put("ksef-upo", "u.xml", "abc", 3); err != nil {
		t.Fatal(err)
	}
	if err := put("ksef-upo", "../escape", "zzz", 3); err == nil { // rejected: not counted
		t.Fatal("a key escaping its bucket was stored")
	}
	// Reads go through untouched.
	if info, err := st.Stat(ctx, "ksef-invoices", "b.xml"); err != nil || info.Size != 7 {
		t.Fatalf("Stat through the decorator: %+v, %v", info, err)
	}
	s := scrape(t, m)
	if got := s.Sum(MetricStorageBytes, "bucket", "ksef-invoices"); got != 12 {
		t.Errorf("invoices bytes = %v, want 12", got)
	}
	if got := s.Sum(MetricStorageBytes, "bucket", "ksef-upo"); got != 3 {
		t.Errorf("upo bytes = %v, want 3", got)
	}
}

func TestOpenSessionsGauge(t *testing.T) {
	m := NewMetrics()
	g := m.OpenSessions(ModeOnline)
	g.Inc()
	g.Inc()
	g.Dec()
	m.OpenSessions(ModeBatch).Inc()
	s := scrape(t, m)
	if got := s.Sum(MetricOpenSessions, "mode", ModeOnline); got != 1 {
		t.Errorf("online = %v, want 1", got)
	}
	if got := s.Sum(MetricOpenSessions, "mode", ModeBatch); got != 1 {
		t.Errorf("batch = %v, want 1", got)
	}
}

func TestInvoiceWarned(t *testing.T) {
	m := NewMetrics()
	m.InvoiceWarned(2)
	m.InvoiceWarned(3)
	s := scrape(t, m)
	if got := s.Sum(MetricInvoicesWarned); got != 2 {
		t.Errorf("invoices with warnings = %v, want 2", got)
	}
	if got := s.Sum(MetricWarnings); got != 5 {
		t.Errorf("warnings = %v, want 5", got)
	}
}

// TestLabelsAreBounded: no metric of the pipeline carries a label that could hold an invoice
// id, a NIP or another unbounded value.
func TestLabelsAreBounded(t *testing.T) {
	m := NewMetrics()
	msg := &worker.Message{Subject: "invoice.submitted", CorrelationID: "corr-1",
		Event: &events.InvoiceSubmitted{Meta: events.Meta{InvoiceID: "FV/1/2026", ContextNIP: "5261040828"}}}
	m.Settled("sender")(msg, worker.DeadLettered, worker.Permanent(errors.New("x")), time.Second)
	m.ObserveKSeF(ksef.Call{Operation: ksef.OpInvoiceSend, HTTPStatus: 200})
	m.ObserveKSeF(ksef.Call{Operation: ksef.OpInvoiceSend, HTTPStatus: 429, Retrying: true})
	m.LimitWait(ksef.OpInvoiceSend)
	m.StoredBytes("ksef-invoices", 1)
	m.OpenSessions(ModeOnline).Inc()
	m.InvoiceWarned(1)
	allowed := []string{"worker", "subject", "outcome", "kind", "operation", "code", "bucket", "mode"}
	s := scrape(t, m)
	n := 0
	for name, f := range s {
		if !strings.HasPrefix(name, "ksef_") {
			continue
		}
		n++
		for _, metric := range f.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if !slices.Contains(allowed, lp.GetName()) {
					t.Errorf("%s has label %s", name, lp.GetName())
				}
				if v := lp.GetValue(); strings.Contains(v, "5261040828") || strings.Contains(v, "FV/1") || v == "corr-1" {
					t.Errorf("%s label %s=%q holds an identifier", name, lp.GetName(), v)
				}
			}
		}
	}
	if n != 12 {
		t.Errorf("%d ksef_ metric families, want 12:\n%s", n, s)
	}
}
