package reliability

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invariant"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// eventLog is every event of the stream in stream order. It survives NATS restarts: the reader
// starts again after the last sequence it saw.
type eventLog struct {
	mu      sync.Mutex
	all     []natsx.Delivered
	changed chan struct{}
}

func followEvents(t *testing.T, js jetstream.JetStream, cfg natsx.Config) *eventLog {
	l := &eventLog{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.read(ctx, js, cfg)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func (l *eventLog) read(ctx context.Context, js jetstream.JetStream, cfg natsx.Config) {
	codec := cfg.Codec()
	name := cfg.ReadStreamName() // the ERP user reads the mirror
	next := uint64(1)
	for ctx.Err() == nil {
		err := func() error {
			stream, err := js.Stream(ctx, name)
			if err != nil {
				return err
			}
			// A reset that keeps failing ends the Fetch (and a new consumer is made here) instead
			// of retrying forever inside it.
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
				DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next, MaxResetAttempts: 3})
			if err != nil {
				return err
			}
			lastGot, lastCheck := time.Now(), time.Now()
			for ctx.Err() == nil {
				if time.Since(lastGot) > 3*time.Second && time.Since(lastCheck) > 3*time.Second {
					// Nothing for a while: if the stream has more, the consumer is stuck (on a
					// cluster, its node was killed and took the pull with it): start a new one.
					lastCheck = time.Now()
					ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
					info, err := stream.Info(ictx)
					cancel()
					if err == nil && info.State.LastSeq >= next {
						return fmt.Errorf("reader stalled before stream sequence %d of %d", next, info.State.LastSeq)
					}
				}
				batch, err := cons.Fetch(512, jetstream.FetchMaxWait(300*time.Millisecond))
				if err != nil {
					return err
				}
				var got []natsx.Delivered
				for msg := range batch.Messages() {
					meta, err := msg.Metadata()
					if err != nil {
						continue
					}
					d := natsx.Delivered{Subject: msg.Subject(), Data: msg.Data(), Seq: meta.Sequence.Stream, Time: meta.Timestamp}
					d.Event, d.Err = codec.Decode(msg.Data())
					got = append(got, d)
					next = d.Seq + 1
				}
				if len(got) > 0 {
					lastGot = time.Now()
					l.mu.Lock()
					l.all = append(l.all, got...)
					close(l.changed)
					l.changed = make(chan struct{})
					l.mu.Unlock()
				}
				if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
			}
			return nil
		}()
		if err != nil && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond) // NATS is down or restarting: read on when it is back
		}
	}
}

func (l *eventLog) snapshot() ([]natsx.Delivered, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all), l.changed
}

// await waits until done holds for the events seen so far and returns them; it gives up after
// timeout and returns what it saw (the caller's assertions say what is missing). tick, when
// set, runs between checks (to notice crashed workers).
func (l *eventLog) await(timeout time.Duration, done func([]natsx.Delivered) bool, tick func()) ([]natsx.Delivered, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		evs, changed := l.snapshot()
		if done(evs) {
			return evs, true
		}
		select {
		case <-changed:
		case <-poll.C:
			if tick != nil {
				tick()
			}
		case <-deadline.C:
			return evs, false
		}
	}
}

// eventsOf returns the events of type T, in stream order.
func eventsOf[T events.Event](evs []natsx.Delivered) []T {
	var out []T
	for _, d := range evs {
		if ev, ok := d.Event.(T); ok {
			out = append(out, ev)
		}
	}
	return out
}

// invoice is one invoice of a batch.
type invoice struct {
	id, seller, number, hash string
	xml                      []byte
	ev                       *events.InvoiceSubmitted
}

// makeBatch builds n valid invoices of the demo's two sellers, submitted inline.
func makeBatch(t testing.TB, prefix string, n int) []*invoice {
	t.Helper()
	issued := time.Now()
	out := make([]*invoice, 0, n)
	for i := 1; i <= n; i++ {
		seller := demo.Sellers[i%len(demo.Sellers)]
		xml, err := fa3.Generate(fa3wire.Request(demo.Request(seller, i, issued)))
		if err != nil {
			t.Fatal(err)
		}
		inv := &invoice{id: fmt.Sprintf("%s-%04d", prefix, i), seller: seller, xml: xml, hash: kcrypto.SHA256Base64(xml),
			number: fmt.Sprintf("FV/%s/%04d", seller[:4], i)}
		inv.ev = &events.InvoiceSubmitted{InlineXML: xml}
		inv.ev.InvoiceID, inv.ev.ContextNIP = inv.id, seller
		out = append(out, inv)
	}
	return out
}

// publishAll publishes the batch's submissions.
func (c *cluster) publishAll(batch []*invoice) {
	c.t.Helper()
	for _, inv := range batch {
		if err := c.pub.Publish(c.t.Context(), inv.ev, nil); err != nil {
			c.t.Fatalf("publishing %s: %v", inv.id, err)
		}
	}
}

// outcome is what became of a batch.
type outcome struct {
	invoices, accepted, rejected, lost, sentTwice int
	// duplicates counts invoices for which a consumer deduplicating by event_id still sees more
	// than one outcome (two accepted events with different ids, or accepted and rejected).
	duplicates  int
	deadLetters int
	problems    []string // the first few of each kind, for failure messages
}

// settled reports whether every invoice of the batch has an outcome.
func settled(batch []*invoice) func([]natsx.Delivered) bool {
	return func(evs []natsx.Delivered) bool {
		seen := map[string]bool{}
		for _, d := range evs {
			switch ev := d.Event.(type) {
			case *events.InvoiceAccepted:
				seen[ev.InvoiceID] = true
			case *events.InvoiceRejected:
				seen[ev.InvoiceID] = true
			}
		}
		for _, inv := range batch {
			if !seen[inv.id] {
				return false
			}
		}
		return true
	}
}

// judge counts the batch's outcomes from the events and from what the emulator processed, with
// the invariant checker every row uses (dead letters carrying an invoice's id are its terminal
// event; a row that expects none fails on them).
func (c *cluster) judge(batch []*invoice, evs []natsx.Delivered) outcome {
	invs := make([]invariant.Invoice, len(batch))
	for i, inv := range batch {
		invs[i] = invariant.Invoice{ID: inv.id, SendKey: sendKey(inv)}
	}
	all := make([]events.Event, 0, len(evs))
	for _, d := range evs {
		if d.Event != nil {
			all = append(all, d.Event)
		}
	}
	r := invariant.Check(invs, c.em.Stats().Sends, all)
	// A dead-lettered invoice counts as lost here: no row expects one.
	return outcome{invoices: r.Invoices, accepted: r.Accepted, rejected: r.Rejected, lost: r.Lost + r.DeadLettered,
		sentTwice: r.SentTwice, duplicates: r.Duplicates, deadLetters: r.DeadLetters, problems: r.Problems}
}

func sendKey(inv *invoice) string {
	return inv.seller + "|" + inv.number + "|" + inv.hash
}

// check fails the test unless the batch ended as wanted: every invoice accepted (or, for those
// in rejected, rejected), none lost, none sent twice, no duplicate outcome, no dead letter.
func (o outcome) check(t testing.TB, wantRejected int) {
	t.Helper()
	if o.lost > 0 || o.sentTwice > 0 || o.duplicates > 0 || o.deadLetters > 0 || o.rejected != wantRejected ||
		o.accepted+o.rejected != o.invoices {
		t.Errorf("%d invoices: %d accepted, %d rejected (want %d), %d lost, %d sent twice, %d with duplicate outcomes, %d dead letters:\n  %s",
			o.invoices, o.accepted, o.rejected, wantRejected, o.lost, o.sentTwice, o.duplicates, o.deadLetters, strings.Join(o.problems, "\n  "))
	}
}

// summary counts events by type, for failure messages.
func summary(evs []natsx.Delivered) string {
	counts := map[string]int{}
	for _, d := range evs {
		if d.Event == nil {
			counts["undecodable"]++
			continue
		}
		counts[d.Event.EventType()]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	return "events:" + b.String()
}
