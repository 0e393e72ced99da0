package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestE2EProductionLimitsThroughBatches sends 2,000 invoices of one context against KSeF's
// production limits (30 online sends a minute, 180 an hour): the sender keeps to the limits,
// switches the context to batch sessions when the online budget cannot carry the backlog, and
// every invoice is accepted, reaching KSeF once, without a single 429.
func TestE2EProductionLimitsThroughBatches(t *testing.T) {
	const total = 2000
	seller := demo.Sellers[0]
	p := start(t, options{
		// Production limits on both sides (the emulator's default table at multiplier 1).
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 1}},
		settings: func(s *pipeline.Settings) {
			s.KSeF.Limits = "production"
			s.KSeF.MaxLimitWait = 5 * time.Second
			s.VisualizeAccepted = false
		},
	})
	p.run(p.rt)
	begin := time.Now()
	subs := make(map[string]*submission, total)
	ids := make([]string, 0, total)
	for n := 1; n <= total; n++ {
		s := p.newSubmission(fmt.Sprintf("LIM-%04d", n), seller, n, viaInline, begin)
		s.ev.Visualize = false
		p.publish(s.ev)
		subs[s.id] = s
		ids = append(ids, s.id)
	}
	evs := p.await(6*time.Minute, "2,000 invoices settled under production limits", settled(ids))
	t.Logf("2,000 invoices settled in %s", time.Since(begin).Round(time.Second))

	acc := byInvoice[*events.InvoiceAccepted](evs)
	if rej := byInvoice[*events.InvoiceRejected](evs); len(rej) > 0 {
		t.Errorf("%d rejected\n%s", len(rej), summary(evs))
	}
	if len(acc) != total {
		t.Fatalf("%d accepted, want %d", len(acc), total)
	}
	if n := p.em.TooManyRequests(); n != 0 {
		t.Errorf("KSeF answered 429 %d times; the limiter must keep the context under its limits", n)
	}
	modes := map[string]int{}
	for _, s := range byInvoice[*events.InvoiceSent](evs) {
		modes[s.Mode]++
	}
	if modes[events.ModeBatch] == 0 {
		t.Errorf("no invoice went through a batch session (modes %v): 2,000 online sends would take over 11 hours", modes)
	}
	if modes[events.ModeOnline] > 180 {
		t.Errorf("%d online sends, over the hourly allowance of 180", modes[events.ModeOnline])
	}
	t.Logf("sent online: %d, in batch packages: %d", modes[events.ModeOnline], modes[events.ModeBatch])
	// A package's size does not depend on the sender's handler count (256): the batch assembler
	// holds the queued invoices' messages itself.
	packages, largest := 0, 0
	for _, c := range eventsOf[*events.SessionClosed](evs) {
		if c.Mode == events.ModeBatch {
			packages++
			largest = max(largest, c.InvoiceCount)
		}
	}
	t.Logf("batch sessions: %d, largest package: %d invoices", packages, largest)
	if largest <= 256 {
		t.Errorf("the largest batch package has %d invoices; packages should gather the backlog, not the handlers waiting", largest)
	}
	for id, s := range subs {
		if n := p.em.SendCount(seller, s.req.InvoiceNumber, kcrypto.SHA256Base64(s.xml)); n != 1 {
			t.Errorf("%s reached KSeF %d times", id, n)
		}
	}
	if dl := eventsOf[*events.DeadLettered](evs); len(dl) > 0 {
		t.Errorf("%d dead letters\n%s", len(dl), summary(evs))
	}
}
