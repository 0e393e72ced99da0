package poller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/poller"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestStuckPackageLeavesRoomForOthers: a batch package of 10,000 invoices that KSeF keeps
// processing holds one snoozed invoice.sent per invoice in the poller's consumer, and snoozed
// messages count toward MaxAckPending (nats-server#6093). With the consumer as the poller
// describes it (poller.Consumer, which provisioning and the runtime use), another context's
// invoice is still handled while all 10,000 are held; the control, JetStream's usual 1,000,
// leaves it waiting behind the stuck package.
func TestStuckPackageLeavesRoomForOthers(t *testing.T) {
	const stuck = 10_000
	for _, tc := range []struct {
		name          string
		maxAckPending int // 0: the poller's own
		through       bool
	}{
		{"the poller's consumer", 0, true},
		{"control: MaxAckPending 1,000", 1_000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			_, url := testenv.NATS(t)
			cfg := natsx.Config{URL: url}
			nc, js, err := natsx.Connect(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			if _, err := natsx.EnsureStreams(ctx, js, cfg); err != nil {
				t.Fatal(err)
			}
			spec := poller.Consumer(cfg.Subjects())
			if spec.MaxAckPending < stuck+1 && tc.maxAckPending == 0 {
				t.Fatalf("the poller's MaxAckPending %d leaves no room beside %d stuck invoices", spec.MaxAckPending, stuck)
			}
			if tc.maxAckPending > 0 {
				spec.MaxAckPending = tc.maxAckPending
			}
			const stuckNIP, otherNIP = "5261040828", "7740001454"
			other := make(chan string, 1)
			// What the poller does with an invoice of a package KSeF is still processing: snooze it.
			handler := worker.For(func(ctx context.Context, ev *events.InvoiceSent, m *worker.Message) error {
				if ev.ContextNIP == stuckNIP {
					return worker.Snooze(time.Hour)
				}
				other <- ev.InvoiceID
				return nil
			})
			wcfg := spec.Config(worker.Config{NATS: cfg, AckWait: time.Minute})
			done := make(chan error, 1)
			go func() { done <- worker.Run(ctx, js, wcfg, handler) }()

			pub := natsx.NewPublisher(js, cfg)
			for i := range stuck {
				if err := pub.Publish(ctx, sentEvent(stuckNIP, fmt.Sprintf("STUCK-%05d", i)), nil); err != nil {
					t.Fatal(err)
				}
			}
			// Every invoice of the stuck package that the consumer lets out is held, snoozed.
			held := min(stuck, spec.MaxAckPending)
			info := waitConsumer(t, js, cfg, spec.Name, func(ci *jetstream.ConsumerInfo) bool {
				return ci.NumAckPending >= held && ci.NumPending == uint64(stuck-held)
			})
			t.Logf("held: %d snoozed, %d waiting", info.NumAckPending, info.NumPending)
			if err := pub.Publish(ctx, sentEvent(otherNIP, "OTHER-1"), nil); err != nil {
				t.Fatal(err)
			}
			if tc.through {
				select {
				case id := <-other:
					if id != "OTHER-1" {
						t.Fatalf("handled %s", id)
					}
				case err := <-done:
					t.Fatalf("worker ended: %v", err)
				case <-time.After(time.Minute):
					t.Fatalf("the other context's invoice was not handled with %d invoices snoozed", held)
				}
				return
			}
			// The control: the other invoice is in the stream and waits, undelivered, behind the
			// stuck package's messages for as long as they are held.
			waitConsumer(t, js, cfg, spec.Name, func(ci *jetstream.ConsumerInfo) bool {
				return ci.NumAckPending == held && ci.NumPending == uint64(stuck-held+1)
			})
			select {
			case id := <-other:
				t.Fatalf("%s handled with MaxAckPending %d taken by snoozed messages: the control does not show the stall", id, held)
			case <-time.After(2 * time.Second):
			}
		})
	}
}

func sentEvent(nip, id string) *events.InvoiceSent {
	const hash = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	ev := &events.InvoiceSent{SessionID: "20261207-SB-0000000001-0000000000-00", Mode: events.ModeBatch, InvoiceHash: hash,
		SentAt: events.At(time.Now()), InvoiceNumber: "FV/" + id,
		XML: &events.ObjectRef{Bucket: "ksef-invoices", Key: nip + "/" + id + ".xml", SHA256: hash, Size: 1}}
	ev.InvoiceID, ev.ContextNIP = id, nip
	return ev
}

// waitConsumer waits until the worker's consumer info satisfies ok, and returns it.
func waitConsumer(t *testing.T, js jetstream.JetStream, cfg natsx.Config, name string, ok func(*jetstream.ConsumerInfo) bool) *jetstream.ConsumerInfo {
	t.Helper()
	var last *jetstream.ConsumerInfo
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		c, err := js.Consumer(t.Context(), natsx.StreamName(cfg.SubjectPrefix), name)
		if err != nil {
			continue
		}
		if last, err = c.Info(t.Context()); err == nil && ok(last) {
			return last
		}
	}
	t.Fatalf("consumer %s never reached the state wanted; last %+v", name, last)
	return nil
}
