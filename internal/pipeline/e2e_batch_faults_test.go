package pipeline_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invariant"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// batchSettings sends most of one context's invoices through batch packages: production limits
// (30 online sends a minute; the rest wait longer than MaxLimitWait, so they are queued), small
// packages, no pacing between them.
func batchSettings(s *pipeline.Settings) {
	s.KSeF.Limits = "production"
	s.KSeF.MaxLimitWait = time.Second
	s.AckWait = 5 * time.Second
	s.Batch.MaxInvoices = 20
	s.Batch.Linger = 500 * time.Millisecond
	s.Batch.Lease = 10 * time.Second
	s.Batch.ReconcileAfter = 2 * time.Second
	s.VisualizeAccepted = false
}

// submitMany publishes n demo invoices of seller (ids prefix-001...), without PDFs, and returns
// them with their ids.
func (p *pipe) submitMany(prefix, seller string, n int) ([]*submission, []string) {
	p.t.Helper()
	issued := time.Now()
	subs := make([]*submission, 0, n)
	ids := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		s := p.newSubmission(fmt.Sprintf("%s-%03d", prefix, i), seller, i, viaInline, issued)
		s.ev.Visualize = false
		p.publish(s.ev)
		subs = append(subs, s)
		ids = append(ids, s.id)
	}
	return subs, ids
}

// judge applies the invariant checker to a run of subs.
func (p *pipe) judge(subs []*submission, evs []natsx.Delivered) invariant.Report {
	p.t.Helper()
	invs := make([]invariant.Invoice, len(subs))
	for i, s := range subs {
		invs[i] = invariant.Invoice{ID: s.id, SendKey: emulator.SendKey(s.seller, s.req.InvoiceNumber, kcrypto.SHA256Base64(s.xml))}
	}
	all := make([]events.Event, 0, len(evs))
	for _, d := range evs {
		if d.Event != nil {
			all = append(all, d.Event)
		}
	}
	return invariant.Check(invs, p.em.Stats().Sends, all)
}

// awaitOrDump is await that, when it times out, logs the state of every invoice without a
// terminal event before failing.
func (p *pipe) awaitOrDump(timeout time.Duration, subs []*submission, done func([]natsx.Delivered) bool) []natsx.Delivered {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs, changed, err := p.events.snapshot()
		if done(evs) {
			return evs
		}
		if err != nil || time.Now().After(deadline) {
			p.dumpStates(subs, evs)
			p.t.Fatalf("not every invoice had a terminal event after %v (%v)\n%s", timeout, err, summary(evs))
		}
		select {
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// dumpStates logs the state of every invoice without a terminal event, for a failed row.
func (p *pipe) dumpStates(subs []*submission, evs []natsx.Delivered) {
	for _, s := range subs {
		if terminal([]string{s.id})(evs) {
			continue
		}
		st, err := p.rt.States.State(p.t.Context(), invoicestate.Key(s.seller, s.id))
		p.t.Logf("%s: state %+v (%v)", s.id, st, err)
	}
}

// terminal reports whether every invoice id has a terminal event: accepted, rejected, or a dead
// letter carrying its id.
func terminal(ids []string) func([]natsx.Delivered) bool {
	return func(evs []natsx.Delivered) bool {
		done := map[string]bool{}
		for _, d := range evs {
			switch ev := d.Event.(type) {
			case *events.InvoiceAccepted:
				done[ev.InvoiceID] = true
			case *events.InvoiceRejected:
				done[ev.InvoiceID] = true
			case *events.DeadLettered:
				if ev.InvoiceID != "" {
					done[ev.InvoiceID] = true
				}
			}
		}
		for _, id := range ids {
			if !done[id] {
				return false
			}
		}
		return true
	}
}

// TestE2EBatchAmbiguousCloses is the scenario of one context with more invoices than its online
// allowance, where KSeF answers some batch closes with a 5xx after closing the session and fails
// the client's retries of some closes: no close whose outcome is unknown lets its invoices go
// into another package, so every invoice reaches KSeF exactly once and is accepted.
func TestE2EBatchAmbiguousCloses(t *testing.T) {
	const total = 300
	p := start(t, options{
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 1}, Seed: 14,
			Faults: emulator.Faults{AmbiguousRate: 0.35, ServerErrorRate: 0.5, Ops: []ksef.Operation{ksef.OpSessionClose}}},
		settings: batchSettings,
	})
	p.run(p.rt, pipeline.Sender, pipeline.Poller)
	begin := time.Now()
	subs, ids := p.submitMany("AMB", demo.Sellers[0], total)
	evs := p.await(6*time.Minute, "a terminal event for every invoice", terminal(ids))
	r := p.judge(subs, evs)
	t.Logf("%s in %v; %d batch sessions opened, %d closes answered 5xx, %d ambiguous",
		r, time.Since(begin).Round(time.Second), p.em.Requests(ksef.OpSessionOpenBatch, 200),
		countStatus(p.em, ksef.OpSessionClose, 500), p.em.Stats().Faults["ambiguous"])
	if err := r.Err(invariant.Want{}); err != nil {
		t.Fatal(err)
	}
	if batched := len(eventsOfMode(evs, events.ModeBatch)); batched < total/2 {
		t.Errorf("only %d of %d invoices went through batch sessions: the row does not test the batch path", batched, total)
	}
	if p.em.Stats().Faults["ambiguous"] == 0 {
		t.Error("no close was answered ambiguously: the row tested nothing")
	}
}

// eventsOfMode returns the invoice.sent events of one mode, one per invoice.
func eventsOfMode(evs []natsx.Delivered, mode string) map[string]bool {
	out := map[string]bool{}
	for _, ev := range eventsOf[*events.InvoiceSent](evs) {
		if ev.Mode == mode {
			out[ev.InvoiceID] = true
		}
	}
	return out
}

// countStatus counts answers of op with an HTTP status in the hundred of status.
func countStatus(em *emulator.Emulator, op ksef.Operation, status int) int {
	n := 0
	for code, c := range em.Stats().Requests[op] {
		if code/100 == status/100 {
			n += c
		}
	}
	return n
}

// TestE2EBatchObjectReplacedAfterValidation replaces an ERP's stored invoice after the sender
// validated it and queued it for a batch package: the package is built only from bytes with the
// validated hash, so the replaced invoice is failed with a dead letter saying so, and KSeF never
// receives the unvalidated content; the other invoices of the package go on.
func TestE2EBatchObjectReplacedAfterValidation(t *testing.T) {
	p := start(t, options{
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 1}},
		settings: func(s *pipeline.Settings) {
			batchSettings(s)
			// Time to replace the object while the package gathers; one package takes every
			// invoice that spills over, so that none fills and goes before its linger.
			s.Batch.Linger = 5 * time.Second
			s.Batch.MaxInvoices = 100
		},
	})
	seller := demo.Sellers[0]
	begin := time.Now()
	// Spend the context's online minute first, so that the invoices below are batched.
	var subs []*submission
	var ids []string
	for n := 1; n <= 40; n++ {
		s := p.newSubmission(fmt.Sprintf("REPL-%02d", n), seller, n, viaObject, begin)
		s.ev.Visualize = false
		subs = append(subs, s)
		ids = append(ids, s.id)
	}
	p.run(p.rt, pipeline.Sender, pipeline.Poller)
	for _, s := range subs {
		p.publish(s.ev)
	}
	// The first invoice found waiting for a package (which ones spill over from the online
	// minute depends on the sender's handlers' order): its object is replaced by another valid
	// invoice (another number), which was never validated for this submission.
	var victim *submission
	for deadline := time.Now().Add(time.Minute); victim == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no invoice waited for a batch package within a minute")
		}
		for _, s := range subs {
			st, err := p.rt.States.State(t.Context(), invoicestate.Key(seller, s.id))
			if err != nil {
				t.Fatal(err)
			}
			if st != nil && st.Status == invoicestate.BatchQueued {
				victim = s
				break
			}
		}
	}
	other := p.newSubmission("REPL-OTHER", seller, 99, viaInline, begin)
	p.putObject(victim.ev.XML.Key, other.xml)

	evs := p.await(3*time.Minute, "a terminal event for every invoice", terminal(ids))
	r := p.judge(subs, evs)
	if err := r.Err(invariant.Want{DeadLettered: 1, DeadLetters: 1}); err != nil {
		t.Fatal(err)
	}
	var dl *events.DeadLettered
	for _, d := range eventsOf[*events.DeadLettered](evs) {
		if d.InvoiceID == victim.id {
			dl = d
		}
	}
	if dl == nil || !strings.Contains(dl.Reason, "changed after it was validated") {
		t.Fatalf("dead letter of the replaced invoice: %+v, want one saying it changed after validation", dl)
	}
	if n := p.em.SendCount(seller, other.req.InvoiceNumber, kcrypto.SHA256Base64(other.xml)); n != 0 {
		t.Errorf("KSeF received the unvalidated replacement %d times", n)
	}
	st, err := p.rt.States.State(t.Context(), invoicestate.Key(seller, victim.id))
	if err != nil || st == nil || st.Status != invoicestate.Failed {
		t.Errorf("state of the replaced invoice: %+v (%v), want failed", st, err)
	}
}

// openRecorder forwards KSeF requests and keeps the bodies of batch session opens.
type openRecorder struct {
	mu    sync.Mutex
	opens []string
}

func (o *openRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.URL.Path == "/v2/sessions/batch" && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(body)
			o.mu.Lock()
			o.opens = append(o.opens, string(b))
			o.mu.Unlock()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestE2EOfflineInvoicesInOfflineBatchSessions: the seed's interactive send has no offline mode,
// so invoices submitted with offline go in batch sessions opened with offline: true, apart from
// the others (which go online here), and are accepted.
func TestE2EOfflineInvoicesInOfflineBatchSessions(t *testing.T) {
	rec := &openRecorder{}
	p := start(t, options{
		settings: func(s *pipeline.Settings) {
			s.Batch.Linger = 300 * time.Millisecond
			s.VisualizeAccepted = false
		},
		ksefOptions: []ksef.Option{ksef.WithHTTPClient(&http.Client{Transport: rec, Timeout: 30 * time.Second})},
	})
	p.run(p.rt, pipeline.Sender, pipeline.Poller)
	seller := demo.Sellers[0]
	var subs []*submission
	var ids []string
	offline := map[string]bool{}
	for n := 1; n <= 6; n++ {
		s := p.newSubmission(fmt.Sprintf("OFF-%d", n), seller, n, viaInline, time.Now())
		s.ev.Visualize = false
		s.ev.Offline = n%2 == 0
		offline[s.id] = s.ev.Offline
		p.publish(s.ev)
		subs = append(subs, s)
		ids = append(ids, s.id)
	}
	evs := p.await(2*time.Minute, "a terminal event for every invoice", terminal(ids))
	if err := p.judge(subs, evs).Err(invariant.Want{}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range eventsOf[*events.InvoiceSent](evs) {
		if want := map[bool]string{true: events.ModeBatch, false: events.ModeOnline}[offline[ev.InvoiceID]]; ev.Mode != want {
			t.Errorf("%s (offline %v) sent in mode %s, want %s", ev.InvoiceID, offline[ev.InvoiceID], ev.Mode, want)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.opens) == 0 {
		t.Fatal("no batch session was opened")
	}
	for _, body := range rec.opens {
		if !strings.Contains(body, `"offline":true`) {
			t.Errorf("a batch session of offline invoices was opened without offline: true: %s", body)
		}
	}
}

// TestE2EBatchPackagesFailingAsAWhole: KSeF fails some packages as a whole (a package-level
// status, right after open or after processing) without processing any of their invoices. Those
// invoices were announced sent; the poller finds their session final without them and puts them
// back in the batch queue (requeue n), so each is sent in another package and accepted, never
// left waiting, never received twice.
func TestE2EBatchPackagesFailingAsAWhole(t *testing.T) {
	const total = 400
	p := start(t, options{
		emulator: emulator.Config{Limits: emulator.LimitConfig{Multiplier: 1}, Seed: 15,
			Faults: emulator.Faults{PackageFailRate: 0.3, BatchOpenFailRate: 0.1}},
		settings: func(s *pipeline.Settings) {
			batchSettings(s)
			s.Batch.MaxInvoices = 250
			s.Batch.Interval = 2 * time.Second
			s.AckWait = 2 * time.Second
		},
	})
	p.run(p.rt, pipeline.Sender, pipeline.Poller)
	begin := time.Now()
	subs, ids := p.submitMany("PKG", demo.Sellers[0], total)
	evs := p.awaitOrDump(4*time.Minute, subs, terminal(ids))
	r := p.judge(subs, evs)
	requeued := map[string]bool{}
	for _, q := range eventsOf[*events.BatchQueued](evs) {
		if q.Requeue > 0 {
			requeued[q.InvoiceID] = true
		}
	}
	st := p.em.Stats()
	t.Logf("%s in %v; %d packages failed as a whole, %d right after open; %d invoices put back",
		r, time.Since(begin).Round(time.Second), st.Faults["packageFail"], st.Faults["batchOpenFail"], len(requeued))
	if err := r.Err(invariant.Want{}); err != nil {
		p.dumpStates(subs, evs)
		t.Fatal(err)
	}
	if st.Faults["packageFail"]+st.Faults["batchOpenFail"] == 0 || len(requeued) == 0 {
		t.Fatal("no package failed, or no invoice was put back: the row tested nothing")
	}
	// A put-back invoice was announced sent in the failed session and then in another one.
	for id := range requeued {
		if n := distinctIDs[*events.InvoiceSent](evs, id); n < 2 {
			t.Errorf("%s was put back, yet announced sent %d times", id, n)
		}
	}
}

// TestE2ECancelledInvoicesResubmitted: KSeF cancels some invoices' processing (405, 500, 550:
// "send again"). The poller records the resubmission and submits them again; each is accepted
// once in the end (a cancelled invoice does not count as received).
func TestE2ECancelledInvoicesResubmitted(t *testing.T) {
	const total = 120
	p := start(t, options{
		emulator: emulator.Config{Seed: 16, Faults: emulator.Faults{CancelRate: 0.15}},
		settings: func(s *pipeline.Settings) { s.VisualizeAccepted = false },
	})
	p.run(p.rt, pipeline.Sender, pipeline.Poller)
	subs, ids := p.submitMany("CAN", demo.Sellers[1], total)
	evs := p.await(3*time.Minute, "a terminal event for every invoice", terminal(ids))
	r := p.judge(subs, evs)
	resubmitted := 0
	for _, ev := range eventsOf[*events.InvoiceSubmitted](evs) {
		if ev.Resubmission > 0 {
			resubmitted++
		}
	}
	t.Logf("%s; %d cancelled by KSeF, %d resubmissions", r, p.em.Stats().Faults["cancel"], resubmitted)
	if err := r.Err(invariant.Want{}); err != nil {
		t.Fatal(err)
	}
	if resubmitted == 0 {
		t.Fatal("no invoice was resubmitted: the row tested nothing")
	}
}
