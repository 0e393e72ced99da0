package sender_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// slowStore is the local store with a slow (and, while fail is set, failing) Put: the XML's
// write outlasts the send, as a slow disk or S3 would.
type slowStore struct {
	storage.Store
	delay time.Duration
	mu    sync.Mutex
	fail  bool
}

var errStoreDown = errors.New("store down")

func (s *slowStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta storage.ObjectMeta) (storage.ObjectInfo, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return storage.ObjectInfo{}, errStoreDown
	}
	return s.Store.Put(ctx, bucket, key, r, size, meta)
}

func (s *slowStore) setFail(v bool) { s.mu.Lock(); s.fail = v; s.mu.Unlock() }

// checkingPublisher publishes through the real publisher and records, for each invoice.sent,
// whether the object it points at was stored at that moment.
type checkingPublisher struct {
	pub   *natsx.Publisher
	store storage.Store
	mu    sync.Mutex
	sent  []*events.InvoiceSent
	found []bool
}

func (p *checkingPublisher) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	if s, ok := ev.(*events.InvoiceSent); ok {
		info, err := p.store.Stat(ctx, s.XML.Bucket, s.XML.Key)
		p.mu.Lock()
		p.sent = append(p.sent, s)
		p.found = append(p.found, err == nil && info.SHA256 == s.XML.SHA256 && info.Size == s.XML.Size)
		p.mu.Unlock()
	}
	return p.pub.Publish(ctx, ev, hdr)
}

func (p *checkingPublisher) published() ([]*events.InvoiceSent, []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*events.InvoiceSent(nil), p.sent...), append([]bool(nil), p.found...)
}

// The XML of an inline invoice is written while the invoice is sent: invoice.sent must still
// point at a stored object, and a write that fails after the send must neither announce the
// send nor let the invoice be sent again.
func TestInlineXMLStoredBeforeSentIsPublished(t *testing.T) {
	ctx := context.Background()
	js := testenv.JetStream(t)
	if _, err := natsx.EnsureStreams(ctx, js, natsx.Config{}); err != nil {
		t.Fatal(err)
	}
	kv, err := natsx.EnsureKV(ctx, js, "states-test", 0)
	if err != nil {
		t.Fatal(err)
	}
	states := invoicestate.NewStore(natsx.NewCAS(kv), nil)

	seller := demo.Sellers[0]
	em, client := startEmulator(t, seller)
	clients := func(context.Context, string) (*ksef.Client, error) { return client, nil }

	local, buckets, validator := localStore(t)

	const lease = 50 * time.Millisecond
	for i, tc := range []struct {
		name      string
		failFirst bool // the first write fails (after the send has gone out)
	}{
		{name: "write outlasts the send"},
		{name: "write fails after the send", failFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &slowStore{Store: local, delay: 30 * time.Millisecond, fail: tc.failFirst}
			pub := &checkingPublisher{pub: natsx.NewPublisher(js, natsx.Config{}), store: local}
			s := sender.New(sender.Config{Layout: storage.Layout{Buckets: buckets}, Batch: sender.BatchConfig{Disabled: true},
				Pool: sender.PoolConfig{CloseIdle: -1}, SendLease: lease}, clients, states, store, validator, pub)
			defer s.Close(ctx)

			req := demo.Request(seller, 100+i, time.Now())
			xml, err := fa3.Generate(fa3wire.Request(req), fa3.WithValidator(validator))
			if err != nil {
				t.Fatal(err)
			}
			ev := &events.InvoiceSubmitted{InlineXML: xml}
			ev.InvoiceID, ev.ContextNIP, ev.OccurredAt = "erp-"+req.InvoiceNumber, seller, events.At(time.Now())
			hash := kcrypto.SHA256Base64(xml)

			err = s.Submit(ctx, ev)
			if tc.failFirst {
				if !errors.Is(err, errStoreDown) {
					t.Fatalf("Submit with a failing write: %v, want %v", err, errStoreDown)
				}
				if sent, _ := pub.published(); len(sent) != 0 {
					t.Fatalf("invoice.sent published though its XML was not stored: %+v", sent[0])
				}
				st, gerr := states.State(ctx, invoicestate.Key(seller, ev.InvoiceID))
				if gerr != nil || st == nil || st.Status != invoicestate.Sending || st.SessionID == "" {
					t.Fatalf("state after the failed write: %+v %v, want sending in a session", st, gerr)
				}
				if n := em.SendCount(seller, req.InvoiceNumber, hash); n != 1 {
					t.Fatalf("KSeF got the invoice %d times, want 1", n)
				}
				// The redelivery, once the store works and the send lease has passed, finds the
				// send in KSeF and announces it.
				store.setFail(false)
				time.Sleep(lease)
				err = s.Submit(ctx, ev)
			}
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			sent, found := pub.published()
			if len(sent) != 1 || !found[0] {
				t.Fatalf("invoice.sent: %d published, object stored when published: %v", len(sent), found)
			}
			if sent[0].InvoiceHash != hash || sent[0].XML.SHA256 != hash {
				t.Fatalf("invoice.sent hashes %s / %s, want %s", sent[0].InvoiceHash, sent[0].XML.SHA256, hash)
			}
			st, err := states.State(ctx, invoicestate.Key(seller, ev.InvoiceID))
			if err != nil || st == nil || st.Status != invoicestate.Sent || st.XML == nil || *st.XML != *sent[0].XML {
				t.Fatalf("state: %+v %v, want sent pointing at %+v", st, err, sent[0].XML)
			}
			if n := em.SendCount(seller, req.InvoiceNumber, hash); n != 1 {
				t.Fatalf("KSeF got the invoice %d times, want 1", n)
			}
		})
	}
}
