package poller_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/poller"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// acceptances is the real publisher, noting when each invoice.accepted went out.
type acceptances struct {
	*natsx.Publisher
	mu sync.Mutex
	at map[string]time.Time
}

func (a *acceptances) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	if acc, ok := ev.(*events.InvoiceAccepted); ok {
		a.mu.Lock()
		a.at[acc.InvoiceID] = time.Now()
		a.mu.Unlock()
	}
	return a.Publisher.Publish(ctx, ev, hdr)
}

func (a *acceptances) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

// TestPollerLearnsProcessingTime sends invoices one after another to an emulator that takes a
// fixed time to process them and follows them with the poller behind a real worker: once the
// first invoices are settled, each later one is asked about about once, shortly after KSeF is
// done, instead of at once and then after growing snoozes.
func TestPollerLearnsProcessingTime(t *testing.T) {
	const (
		nip        = "5261040828"
		n          = 16
		processing = 300 * time.Millisecond
		latency    = 20 * time.Millisecond
	)
	em, err := emulator.New(emulator.Config{Tokens: map[string]string{"t": nip}, ProcessingDelay: processing, StorageDelay: -1,
		Limits: emulator.LimitConfig{Disabled: true}, Faults: emulator.Faults{Latency: latency}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	srv := httptest.NewServer(em.Handler())
	defer srv.Close()
	client, err := ksef.New(srv.URL, ksef.WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}

	_, url := testenv.NATS(t)
	ncfg := natsx.Config{URL: url, SubjectPrefix: "t"}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), ncfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := natsx.EnsureStreams(t.Context(), js, ncfg); err != nil {
		t.Fatal(err)
	}
	pub := &acceptances{Publisher: natsx.NewPublisher(js, ncfg), at: map[string]time.Time{}}
	p := poller.New(poller.Config{}, func(context.Context, string) (*ksef.Client, error) { return client, nil }, nil, nil, pub)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, js, worker.Config{Name: "poller", Subjects: []string{ncfg.Subjects().InvoiceSent()}, NATS: ncfg, Concurrency: 8}, p.Handle)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	s, err := client.OpenSession(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	gen := bench.NewGenerator(1, "5213017228", time.Now())
	sentAt := map[string]time.Time{}
	var statusBefore int
	for i := range n {
		if i == n/2 {
			statusBefore = em.Requests(ksef.OpInvoiceStatus, 200)
		}
		inv, err := gen.Invoice(nip, i+1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Send(t.Context(), inv.XML)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		sentAt[inv.ID] = at
		hash := kcrypto.SHA256Base64(inv.XML)
		ev := &events.InvoiceSent{KsefInvoiceID: res.Id, SessionID: s.ID, Mode: events.ModeOnline, InvoiceHash: hash,
			SentAt: events.At(at), InvoiceNumber: inv.ID,
			XML: &events.ObjectRef{Bucket: "ksef-invoices", Key: inv.ID + ".xml", SHA256: hash, Size: int64(len(inv.XML))}}
		ev.InvoiceID, ev.ContextNIP = inv.ID, nip
		if err := pub.Publish(t.Context(), ev, nil); err != nil {
			t.Fatal(err)
		}
		// The next one once this one is settled: each invoice learns from all before it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := pub.get(inv.ID); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("invoice %d not accepted after 10 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var late []time.Duration
	for i := n / 2; i < n; i++ {
		inv, _ := gen.Invoice(nip, i+1)
		at, _ := pub.get(inv.ID)
		late = append(late, at.Sub(sentAt[inv.ID]))
	}
	slices.Sort(late)
	// The outcome shows processing after KSeF received the invoice (a latency before the send's
	// answer), and a status call needs a latency to get there: it can be known processing after
	// the send's answer. The old schedule (at once, after 25-50 ms, then 250-500 ms) came
	// hundreds of milliseconds later.
	if median, limit := late[len(late)/2], processing+100*time.Millisecond; median > limit {
		t.Errorf("median time from the send to invoice.accepted %v, want at most %v (all: %v)", median, limit, late)
	}
	if calls := em.Requests(ksef.OpInvoiceStatus, 200) - statusBefore; calls > n/2*3/2 {
		t.Errorf("%d status calls for the last %d invoices, want at most 1.5 each", calls, n/2)
	}
}
