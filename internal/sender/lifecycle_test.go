package sender_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// recorder publishes through the real publisher and keeps what was published.
type recorder struct {
	pub *natsx.Publisher
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	return r.pub.Publish(ctx, ev, hdr)
}

func (r *recorder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.evs {
		if ev.EventType() == typ {
			n++
		}
	}
	return n
}

// rig is what a sender needs, real parts each: NATS with the stream and a state bucket, the
// emulator over loopback HTTP, a local store, the FA(3) validator.
type rig struct {
	states    *invoicestate.Store
	em        *emulator.Emulator
	url       string
	client    *ksef.Client
	store     storage.Store
	buckets   storage.Buckets
	validator *fa3.Validator
	pub       *recorder
	seller    string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := t.Context()
	js := testenv.JetStream(t)
	if _, err := natsx.EnsureStreams(ctx, js, natsx.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := natsx.EnsureKV(ctx, js, "states-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	seller := demo.Sellers[0]
	em, url := serveEmulator(t, seller)
	client, err := ksef.New(url, ksef.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	local, buckets, validator := localStore(t)
	return &rig{states: invoicestate.NewStore(natsx.NewCAS(kv), nil), em: em, url: url, client: client, store: local,
		buckets: buckets, validator: validator, pub: &recorder{pub: natsx.NewPublisher(js, natsx.Config{})}, seller: seller}
}

func (r *rig) sender(t *testing.T, client *ksef.Client, batch bool) *sender.Sender {
	t.Helper()
	clients := func(context.Context, string) (*ksef.Client, error) { return client, nil }
	s := sender.New(sender.Config{Layout: storage.Layout{Buckets: r.buckets}, Batch: sender.BatchConfig{Disabled: !batch},
		Pool: sender.PoolConfig{CloseIdle: -1}, SendLease: time.Second}, clients, r.states, r.store, r.validator, r.pub)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func (r *rig) invoice(t *testing.T, id string, n int) (*events.InvoiceSubmitted, string, string) {
	t.Helper()
	req := demo.Request(r.seller, n, time.Now())
	xml, err := fa3.Generate(fa3wire.Request(req), fa3.WithValidator(r.validator))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events.InvoiceSubmitted{InlineXML: xml}
	ev.InvoiceID, ev.ContextNIP, ev.OccurredAt = id, r.seller, events.At(time.Now())
	return ev, req.InvoiceNumber, kcrypto.SHA256Base64(xml)
}

// gate is a limiter that holds the opening of online sessions until released, then says the
// next slot is an hour away: the replica using it cannot send online.
type gate struct{ open chan struct{} }

func (g *gate) Wait(ctx context.Context, op ksef.Operation) error {
	if op != ksef.OpSessionOpenOnline {
		return nil
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return &ratelimit.WaitError{Op: op, Wait: time.Hour}
}

func (g *gate) Throttled(context.Context, ksef.Operation, time.Duration) {}

// TestRacingReplicasOnlineAndBatch: two replicas take the same submission at once. One sends it
// online and records it sent; the other finds no request slot and would queue it for a batch.
// Its write is a compare-and-set on the revision it read, so it loses and looks again instead of
// overwriting "sent": the invoice reaches KSeF once and is never queued.
func TestRacingReplicasOnlineAndBatch(t *testing.T) {
	ctx := t.Context()
	r := newRig(t)
	online := r.sender(t, r.client, true)
	g := &gate{open: make(chan struct{})}
	limited, err := ksef.New(r.url, ksef.WithToken("tok"), ksef.WithLimiter(g))
	if err != nil {
		t.Fatal(err)
	}
	slow := r.sender(t, limited, true)

	ev, number, hash := r.invoice(t, "RACE-1", 1)
	done := make(chan error, 1)
	go func() { done <- slow.Submit(ctx, ev) }() // reads "no record", then waits at the gate
	time.Sleep(200 * time.Millisecond)
	if err := online.Submit(ctx, ev); err != nil {
		t.Fatalf("online replica: %v", err)
	}
	close(g.open)
	err = <-done
	if !worker.IsSnooze(err) {
		t.Fatalf("the replica without a slot: %v, want a snooze (look again)", err)
	}
	st, err := r.states.State(ctx, invoicestate.Key(r.seller, ev.InvoiceID))
	if err != nil || st == nil || st.Status != invoicestate.Sent {
		t.Fatalf("state %+v (%v), want sent", st, err)
	}
	if n := r.pub.count(events.TypeBatchQueued); n != 0 {
		t.Fatalf("%d batch.queued items published for an invoice sent online", n)
	}
	// The redelivery to the slow replica announces the send, and sends nothing.
	if err := slow.Submit(ctx, ev); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if n := r.em.SendCount(r.seller, number, hash); n != 1 {
		t.Fatalf("KSeF received the invoice %d times, want 1", n)
	}
}

// TestCorrectedInvoiceAfterResubmission: KSeF cancelled an invoice, the poller resubmitted it
// (resubmission 1), and then the ERP submits a corrected invoice under the same id. The corrected
// one is a new submission and is sent; only an older delivery of the same content is stale.
func TestCorrectedInvoiceAfterResubmission(t *testing.T) {
	ctx := t.Context()
	r := newRig(t)
	s := r.sender(t, r.client, false)
	ev, _, _ := r.invoice(t, "CORR-1", 1)
	if err := s.Submit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	key := invoicestate.Key(r.seller, ev.InvoiceID)
	snap, err := r.states.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.states.Resend(ctx, snap, 1); err != nil { // what the poller does on 550
		t.Fatal(err)
	}
	resub := *ev
	resub.Resubmission = 1
	if err := s.Submit(ctx, &resub); err != nil {
		t.Fatal(err)
	}
	// An older delivery of the first submission is stale now: nothing happens.
	before := r.pub.count(events.TypeInvoiceSent)
	if err := s.Submit(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if n := r.pub.count(events.TypeInvoiceSent); n != before {
		t.Fatalf("a stale delivery published invoice.sent (%d -> %d)", before, n)
	}
	corrected, number, hash := r.invoice(t, "CORR-1", 2)
	if err := s.Submit(ctx, corrected); err != nil {
		t.Fatal(err)
	}
	if n := r.em.SendCount(r.seller, number, hash); n != 1 {
		t.Fatalf("KSeF received the corrected invoice %d times, want 1", n)
	}
	st, err := r.states.State(ctx, key)
	if err != nil || st == nil || st.Status != invoicestate.Sent || st.InvoiceHash != hash || st.Resubmission != 0 {
		t.Fatalf("state %+v (%v), want the corrected invoice sent", st, err)
	}
}
