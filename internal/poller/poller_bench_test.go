package poller_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/poller"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// countingPublisher encodes each event as the real publisher would and counts them.
type countingPublisher struct {
	codec events.Codec
	n     int
}

func (p *countingPublisher) Publish(_ context.Context, ev events.Event, _ nats.Header) error {
	if _, err := p.codec.Encode(ev); err != nil {
		return err
	}
	p.n++
	return nil
}

// BenchmarkSentAccepted is the poller's status handling of an accepted invoice: one status call
// to the emulator over loopback HTTP, the KSeF number's check and invoice.accepted's encoding.
func BenchmarkSentAccepted(b *testing.B) {
	const nip = "5261040828"
	em, err := emulator.New(emulator.Config{Tokens: map[string]string{"t": nip}, ProcessingDelay: -1, StorageDelay: -1,
		Limits: emulator.LimitConfig{Disabled: true}, TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer em.Close()
	srv := httptest.NewServer(em.Handler())
	defer srv.Close()
	client, err := ksef.New(srv.URL, ksef.WithToken("t"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := client.OpenSession(ctx)
	if err != nil {
		b.Fatal(err)
	}
	inv, err := bench.NewGenerator(1, "5213017228", time.Now()).Invoice(nip, 1)
	if err != nil {
		b.Fatal(err)
	}
	sent, err := s.Send(ctx, inv.XML)
	if err != nil {
		b.Fatal(err)
	}
	if err := em.WaitIdle(ctx); err != nil {
		b.Fatal(err)
	}
	pub := &countingPublisher{}
	p := poller.New(poller.Config{}, func(context.Context, string) (*ksef.Client, error) { return client, nil }, nil, nil, pub)
	ev := &events.InvoiceSent{KsefInvoiceID: sent.Id, SessionID: s.ID, Mode: events.ModeOnline, InvoiceHash: kcrypto.SHA256Base64(inv.XML),
		XML: &events.ObjectRef{Bucket: "ksef-invoices", Key: "x.xml", SHA256: kcrypto.SHA256Base64(inv.XML), Size: int64(len(inv.XML))}}
	ev.InvoiceID, ev.ContextNIP, ev.EventID, ev.OccurredAt = inv.ID, nip, "bench", events.At(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Sent(ctx, ev, 1); err != nil {
			b.Fatal(err)
		}
	}
	if pub.n == 0 {
		b.Fatal("nothing published")
	}
}
