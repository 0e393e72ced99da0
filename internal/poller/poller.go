// Package poller follows what the sender handed to KSeF: invoice.sent becomes invoice.accepted or
// invoice.rejected once KSeF has processed the invoice, and session.closed becomes a stored UPO.
// It does not sleep through long waits: it snoozes the message (NakWithDelay) with growing delays,
// so an invoice stuck at 150 for hours costs nothing but an occasional status call. Only waits
// shorter than JetStream's redelivery timer resolves (inlineWait) are slept in the handler.
//
// The first status call of an online invoice goes out when KSeF has usually finished with it,
// as learned from recent invoices (see timing), then after short gaps, then with the back-off.
package poller

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Config of the poller.
type Config struct {
	// FirstDelay is the first wait before asking again; it doubles up to MaxDelay.
	FirstDelay time.Duration
	// QuickDelay is the wait after a first look that came before KSeF finished, while the
	// invoice is younger than FirstDelay (default 50 ms): KSeF often needs only moments more,
	// and waiting a whole FirstDelay would add it to every such invoice's latency.
	QuickDelay time.Duration
	MaxDelay   time.Duration
	// QuickPolls is how many calls after the learned time of the first one may follow at short
	// gaps (the spread of recent processing times) before the back-off takes over (default 3).
	QuickPolls int
	// MaxResubmissions bounds how often an invoice cancelled by KSeF (405, 550, 500) is sent again.
	MaxResubmissions int
	// Layout says where UPOs are stored.
	Layout storage.Layout
	// BatchListTTL is how long a batch session's invoice list is reused for the invoices of that
	// session (ksefSessionInvoices is limited to 200 calls an hour).
	BatchListTTL time.Duration
	// Deadline is how long after its send an invoice may stay without an outcome (KSeF
	// processing it, or its batch session unprocessed); past it, it is failed with a dead letter
	// (error_kind "deadline") that says how to reconcile it (default 24 h).
	Deadline time.Duration
	// MaxRequeues bounds how often an invoice goes back to the batch queue because KSeF failed
	// its package as a whole (default 3); then it is failed with a dead letter.
	MaxRequeues int
	// Requeue makes the batch queue item of an invoice put back (the sender's QueueItem).
	Requeue func(st *invoicestate.State) *events.BatchQueued
	Now     func() time.Time
}

// Poller handles invoice.sent and session.closed.
type Poller struct {
	cfg     Config
	clients func(ctx context.Context, nip string) (*ksef.Client, error)
	store   storage.Store
	states  *invoicestate.Store
	pub     worker.Publisher

	mu     sync.Mutex
	lists  map[string]*sessionList // batch session id -> cached list
	timing *timing
}

type sessionList struct {
	mu      sync.Mutex
	fetched time.Time
	byID    map[string]ksefapi.InvoiceInfo
	byHash  map[string]ksefapi.InvoiceInfo
	// final: the session's status was final when the list was fetched (after it), so an invoice
	// not in the list was never processed; status is that status.
	final  bool
	status ksefapi.StatusInfo
}

// New returns a poller.
func New(cfg Config, clients func(ctx context.Context, nip string) (*ksef.Client, error), store storage.Store, states *invoicestate.Store, pub worker.Publisher) *Poller {
	if cfg.FirstDelay <= 0 {
		cfg.FirstDelay = 500 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = time.Minute
	}
	if cfg.QuickDelay <= 0 {
		cfg.QuickDelay = 50 * time.Millisecond
	}
	if cfg.MaxResubmissions <= 0 {
		cfg.MaxResubmissions = 3
	}
	if cfg.BatchListTTL <= 0 {
		cfg.BatchListTTL = 20 * time.Second
	}
	if cfg.QuickPolls <= 0 {
		cfg.QuickPolls = 3
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 24 * time.Hour
	}
	if cfg.MaxRequeues <= 0 {
		cfg.MaxRequeues = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Poller{cfg: cfg, clients: clients, store: store, states: states, pub: pub, lists: map[string]*sessionList{},
		timing: newTiming()}
}

// Consumer describes the poller's durable consumer, without a handler (for provisioning it ahead).
func Consumer(subj events.Subjects) worker.Spec {
	// Every invoice KSeF is still processing holds a snoozed message, and snoozed messages count
	// toward MaxAckPending: room for ten full batch packages stuck in processing before other
	// contexts' invoices wait (nats-server#6093). A package failed as a whole is resolved at
	// once (its invoices are put back), so it holds none for long.
	return worker.Spec{Name: names.Poller, Subjects: []string{subj.InvoiceSent(), subj.SessionClosed()},
		Concurrency: 32, MaxAckPending: 100_000}
}

// Spec is the poller's consumer with its handler.
func (p *Poller) Spec(subj events.Subjects) worker.Spec {
	spec := Consumer(subj)
	spec.Handler = p.Handle
	return spec
}

// Handle dispatches the poller's events.
func (p *Poller) Handle(ctx context.Context, m *worker.Message) error {
	return worker.Routes(
		worker.On(func(ctx context.Context, ev *events.InvoiceSent, m *worker.Message) error {
			return p.Sent(ctx, ev, m.Deliveries)
		}),
		worker.On(func(ctx context.Context, ev *events.SessionClosed, m *worker.Message) error {
			return p.SessionClosed(ctx, ev, m.Deliveries)
		}),
	)(ctx, m)
}

// later is the snooze before asking again after n deliveries: exponential with jitter.
func (p *Poller) later(n int) error { return worker.Snooze(p.backoff(n, p.cfg.MaxDelay)) }

// backoff doubles from FirstDelay up to ceil, with jitter: a delay in [d/2, d].
func (p *Poller) backoff(n int, ceil time.Duration) time.Duration {
	d := p.cfg.FirstDelay << min(max(n-1, 0), 16)
	if d > ceil || d <= 0 {
		d = ceil
	}
	return jitter(d)
}

func jitter(d time.Duration) time.Duration { return d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) }

// processing is the snooze of an invoice KSeF is still processing: a quick second look while
// the invoice is young (sent less than FirstDelay ago), then the exponential back-off up to
// ceil, which the quick look does not lengthen.
func (p *Poller) processing(ev *events.InvoiceSent, n int, ceil time.Duration) error {
	if n <= 1 && !ev.OccurredAt.IsZero() && p.cfg.Now().Sub(ev.OccurredAt.Time) < p.cfg.FirstDelay {
		return worker.Snooze(jitter(p.cfg.QuickDelay))
	}
	return worker.Snooze(p.backoff(n-1, ceil))
}

// Sent follows one sent invoice to its outcome.
func (p *Poller) Sent(ctx context.Context, ev *events.InvoiceSent, deliveries int) error {
	client, err := p.clients(ctx, ev.ContextNIP)
	if err != nil {
		return err
	}
	var info *ksefapi.InvoiceInfo
	if ev.Mode == events.ModeBatch {
		var failed *ksefapi.StatusInfo
		info, failed, err = p.batchStatus(ctx, client, ev)
		switch {
		case err != nil:
			return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("asking for the invoice status: %w", err))
		case failed != nil:
			return p.packageFailed(ctx, ev, failed)
		// The session's list is fetched anew at most every BatchListTTL: while a package is
		// usually processed, asking less often than that only delays the outcome; a package that
		// takes longer is asked about with the full back-off.
		case info == nil:
			return p.waiting(ctx, ev, worker.Snooze(p.backoff(deliveries, p.batchCeil(deliveries)))) // not listed yet
		case !ksef.StatusCode(info.Status.Code).Final():
			return p.waiting(ctx, ev, p.processing(ev, deliveries, p.batchCeil(deliveries)))
		}
	} else if info, err = p.onlineStatus(ctx, client, ev, deliveries); info == nil || err != nil {
		if worker.IsSnooze(err) {
			return p.waiting(ctx, ev, err)
		}
		return err
	}
	return p.settle(ctx, client, ev, info, deliveries)
}

// batchCeil is the longest snooze of a batch invoice after n deliveries.
func (p *Poller) batchCeil(n int) time.Duration {
	if n <= 10 {
		return min(p.cfg.BatchListTTL, p.cfg.MaxDelay)
	}
	return p.cfg.MaxDelay
}

// waiting passes on the snooze of an invoice without an outcome yet, unless its deadline has
// passed: then it is failed with a dead letter, so no invoice waits for ever (a snoozed message
// also holds one of the consumer's MaxAckPending).
func (p *Poller) waiting(ctx context.Context, ev *events.InvoiceSent, snooze error) error {
	sent := ev.SentAt.Time
	if sent.IsZero() {
		sent = ev.OccurredAt.Time
	}
	if sent.IsZero() || p.cfg.Now().Sub(sent) <= p.cfg.Deadline {
		return snooze
	}
	reason := fmt.Sprintf("KSeF gave no outcome within %v of the send (session %s, mode %s)", p.cfg.Deadline, ev.SessionID, ev.Mode)
	if err := p.fail(ctx, ev, reason); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Error().Str("session_id", ev.SessionID).Msg(reason)
	return worker.DeadLetter(events.KindDeadline, fmt.Errorf("%s; it may still be processed: reconcile it with `ksefctl status %s`", reason, ev.InvoiceID))
}

// fail records an invoice as failed, if its record still describes this send.
func (p *Poller) fail(ctx context.Context, ev *events.InvoiceSent, reason string) error {
	snap, err := p.states.Get(ctx, invoicestate.Key(ev.ContextNIP, ev.InvoiceID))
	if err != nil {
		return err
	}
	if st := snap.State; st == nil || st.Status != invoicestate.Sent || st.SessionID != ev.SessionID {
		return nil
	}
	if err := p.states.Fail(ctx, snap, reason); err != nil && !errors.Is(err, invoicestate.ErrChanged) {
		return err
	}
	return nil
}

// packageFailed handles an invoice of a batch session that KSeF ended without processing it (the
// package failed as a whole): it goes back to the batch queue, or, after MaxRequeues such
// packages, it is failed with a dead letter. Either way it is not left announced as sent.
func (p *Poller) packageFailed(ctx context.Context, ev *events.InvoiceSent, status *ksefapi.StatusInfo) error {
	log := zerolog.Ctx(ctx).With().Str("session_id", ev.SessionID).Int32("session_status", status.Code).Logger()
	reason := fmt.Sprintf("KSeF ended batch session %s with %d %s without processing the invoice", ev.SessionID, status.Code, status.Description)
	if status.Details != nil && *status.Details != "" {
		reason += " (" + *status.Details + ")"
	}
	snap, err := p.states.Get(ctx, invoicestate.Key(ev.ContextNIP, ev.InvoiceID))
	if err != nil {
		return err
	}
	st := snap.State
	if st == nil || st.Status != invoicestate.Sent || st.SessionID != ev.SessionID || p.cfg.Requeue == nil {
		if st != nil && st.Status == invoicestate.BatchQueued && st.SessionID == "" && st.Requeues > 0 && p.cfg.Requeue != nil {
			// Put back by an earlier delivery whose queue item may not have been published.
			return p.publishRequeue(ctx, ev, st)
		}
		log.Info().Msg("a package failed as a whole, but the invoice's record has moved on; nothing to do")
		return nil
	}
	if st.Requeues >= p.cfg.MaxRequeues {
		if err := p.states.Fail(ctx, snap, reason); err != nil {
			return lookAgain(err)
		}
		log.Error().Int("requeues", st.Requeues).Msg(reason + "; giving up")
		return worker.Permanent(fmt.Errorf("%s, the %d. package in a row with this invoice; it was not sent: check the packages' sessions with `ksefctl status` and submit it again", reason, st.Requeues+1))
	}
	next := *st
	next.Requeues++
	if err := p.states.QueueForBatch(ctx, snap, next, reason); err != nil {
		return lookAgain(err)
	}
	log.Warn().Int("requeues", next.Requeues).Msg(reason + "; the invoice goes into another package")
	return p.publishRequeue(ctx, ev, snap.State)
}

func (p *Poller) publishRequeue(ctx context.Context, ev *events.InvoiceSent, st *invoicestate.State) error {
	item := p.cfg.Requeue(st)
	item.Meta = ev.Meta.Next()
	item.Visualize = item.Visualize || ev.Visualize
	if err := p.pub.Publish(ctx, item, nil); err != nil {
		return fmt.Errorf("publishing batch.queued: %w", err)
	}
	return nil
}

// lookAgain turns a lost compare-and-set into a short snooze: the next delivery acts on what
// the other handler did.
func lookAgain(err error) error {
	if errors.Is(err, invoicestate.ErrChanged) {
		return worker.Snooze(time.Second)
	}
	return err
}

// inlineWait is the longest wait slept in the handler rather than snoozed: JetStream redelivers
// a NakWithDelay no sooner than its pending timer's 10 ms, and the redelivery costs a round trip.
const inlineWait = 20 * time.Millisecond

// onlineStatus asks for an online invoice's status on the learned schedule. It returns the final
// status, or nil and the snooze (or failure) of the message.
func (p *Poller) onlineStatus(ctx context.Context, client *ksef.Client, ev *events.InvoiceSent, deliveries int) (*ksefapi.InvoiceInfo, error) {
	sent := ev.SentAt.Time
	if sent.IsZero() {
		sent = ev.OccurredAt.Time
	}
	id := ev.KsefInvoiceID
	var wait time.Duration
	for {
		// Never before KSeF is likely done, also for an invoice sent before that was learned.
		first, learned := p.timing.first()
		if learned {
			wait = max(wait, first-p.cfg.Now().Sub(sent))
		}
		if wait > inlineWait {
			return nil, worker.Snooze(wait)
		}
		if wait > 0 {
			if err := ksef.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		start := p.cfg.Now()
		info, err := client.InvoiceStatus(ctx, id)
		if err != nil {
			return nil, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("asking for the invoice status: %w", err))
		}
		age := start.Sub(sent)
		code := ksef.StatusCode(info.Status.Code)
		if code.Final() {
			acquired, ok := time.Duration(0), info.AcquisitionDate != nil
			if ok {
				acquired = info.AcquisitionDate.Sub(sent)
			}
			p.timing.settled(id, age, p.cfg.Now().Sub(start), acquired, ok)
			return info, nil
		}
		polls := max(p.timing.missed(id, age), deliveries)
		if polls%50 == 0 {
			zerolog.Ctx(ctx).Warn().Int("status", int(code)).Int("polls", polls).Msg("invoice still processing in KSeF")
		}
		first, learned = p.timing.first()
		gap := p.timing.gap(time.Millisecond, p.cfg.QuickDelay)
		switch past := age - first; {
		case learned && past < time.Duration(p.cfg.QuickPolls)*gap:
			// Later than most: it is likely a moment away.
			wait = gap
		case learned:
			// Far later than usual: back off with how late it is.
			return nil, worker.Snooze(jitter(min(max(past, p.cfg.FirstDelay), p.cfg.MaxDelay)))
		case p.cfg.Now().Sub(sent) < youngFor*p.cfg.FirstDelay:
			// Nothing learned yet (the poller has just started): ask at least every FirstDelay
			// for a while, so that what is learned meanwhile is soon put to use.
			return nil, p.processing(ev, polls, p.cfg.FirstDelay)
		default:
			return nil, p.processing(ev, polls, p.cfg.MaxDelay)
		}
	}
}

// youngFor FirstDelays after its send, an invoice is asked about at least every FirstDelay
// while nothing is learned.
const youngFor = 8

// settle acts on an invoice's final status.
func (p *Poller) settle(ctx context.Context, client *ksef.Client, ev *events.InvoiceSent, info *ksefapi.InvoiceInfo, deliveries int) error {
	code := ksef.StatusCode(info.Status.Code)
	switch {
	case code.Accepted():
		return p.accept(ctx, ev, info, false)
	case code == ksef.StatusDuplicate:
		return p.duplicate(ctx, client, ev, info, deliveries)
	case code.Retryable():
		return p.resubmit(ctx, ev, info)
	default:
		return p.reject(ctx, ev, info)
	}
}

func (p *Poller) accept(ctx context.Context, ev *events.InvoiceSent, info *ksefapi.InvoiceInfo, duplicate bool) error {
	out := &events.InvoiceAccepted{SessionID: ev.SessionID, InvoiceHash: ev.InvoiceHash, XML: ev.XML, DuplicateOfEarlierSend: duplicate,
		Visualize: ev.Visualize, Warnings: ev.Warnings}
	out.Meta = ev.Meta.Next()
	if info.KsefNumber != nil {
		out.KsefNumber = *info.KsefNumber
	}
	if info.AcquisitionDate != nil {
		out.AcquisitionDate = events.At(*info.AcquisitionDate)
	}
	if info.PermanentStorageDate != nil {
		out.PermanentStorageDate = events.At(*info.PermanentStorageDate)
	}
	if err := ksef.ValidateNumber(out.KsefNumber); err != nil {
		return fmt.Errorf("KSeF answered 200 with a bad KSeF number: %w", err)
	}
	if err := p.pub.Publish(ctx, out, nil); err != nil {
		return fmt.Errorf("publishing invoice.accepted: %w", err)
	}
	return nil
}

// duplicate handles 440: when the original's content hash equals ours, it is our own earlier send
// (an ambiguous answer that in fact succeeded) and the invoice is accepted under that number.
func (p *Poller) duplicate(ctx context.Context, client *ksef.Client, ev *events.InvoiceSent, info *ksefapi.InvoiceInfo, deliveries int) error {
	original := extension(info, ksef.ExtOriginalKsefNumber)
	if original != "" {
		body, _, err := client.GetInvoice(ctx, original)
		if ksef.HasCode(err, ksef.CodeInvoiceUnknown) {
			return p.later(deliveries) // not downloadable yet right after acceptance (api#96)
		}
		if err != nil {
			return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("fetching the original of a duplicate: %w", err))
		}
		d := kcrypto.NewDigest()
		_, err = io.Copy(d, io.LimitReader(body, 8<<20))
		body.Close()
		if err != nil {
			return fmt.Errorf("reading the original of a duplicate: %w", err)
		}
		if d.Sum() == ev.InvoiceHash {
			dup, err := p.original(ctx, client, info, original)
			if err != nil {
				return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("finding the original of a duplicate: %w", err))
			}
			return p.accept(ctx, ev, dup, true)
		}
	}
	return p.reject(ctx, ev, info)
}

// original describes the accepted original of a duplicate: the 440 status of the duplicate has
// no acquisition date, the original's entry in its session's list does. Should the list not
// have it, the acquisition day is read from the KSeF number.
func (p *Poller) original(ctx context.Context, client *ksef.Client, dup *ksefapi.InvoiceInfo, number string) (*ksefapi.InvoiceInfo, error) {
	if session := extension(dup, ksef.ExtOriginalSessionReferenceNumber); session != "" {
		list, err := client.SessionInvoices(ctx, session)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if list[i].KsefNumber != nil && *list[i].KsefNumber == number && list[i].AcquisitionDate != nil {
				return &list[i], nil
			}
		}
	}
	out := *dup
	out.KsefNumber = &number
	if ksef.ValidateNumber(number) == nil {
		day, _ := time.Parse("20060102", number[11:19])
		out.AcquisitionDate = &day
	}
	zerolog.Ctx(ctx).Warn().Str("ksef_number", number).Msg("the original of a duplicate is not in its session's list; its acquisition date is the day in its KSeF number")
	return &out, nil
}

func (p *Poller) reject(ctx context.Context, ev *events.InvoiceSent, info *ksefapi.InvoiceInfo) error {
	out := &events.InvoiceRejected{Code: int(info.Status.Code), Description: info.Status.Description, Stage: events.StageStatus,
		OriginalKsefNumber: extension(info, ksef.ExtOriginalKsefNumber)}
	out.Meta = ev.Meta.Next()
	if info.Status.Details != nil && *info.Status.Details != "" {
		out.Details = []string{*info.Status.Details}
	}
	if info.Status.Extensions != nil {
		out.Extensions = map[string]string{}
		for _, e := range *info.Status.Extensions {
			out.Extensions[e.Key] = e.Value
		}
	}
	if err := p.pub.Publish(ctx, out, nil); err != nil {
		return fmt.Errorf("publishing invoice.rejected: %w", err)
	}
	return nil
}

// resubmit sends an invoice whose processing KSeF cancelled (405, 500, 550) back to the sender.
func (p *Poller) resubmit(ctx context.Context, ev *events.InvoiceSent, info *ksefapi.InvoiceInfo) error {
	snap, err := p.states.Get(ctx, invoicestate.Key(ev.ContextNIP, ev.InvoiceID))
	if err != nil {
		return err
	}
	st := snap.State
	if st == nil {
		return worker.Permanent(fmt.Errorf("no sender state for a cancelled invoice"))
	}
	if st.Resubmission >= p.cfg.MaxResubmissions {
		zerolog.Ctx(ctx).Warn().Int("status", int(info.Status.Code)).Msg("KSeF cancelled the invoice again; giving up")
		return p.reject(ctx, ev, info)
	}
	next := st.Resubmission
	switch {
	case st.Status == invoicestate.Sent && st.SessionID == ev.SessionID:
		next++
		if err := p.states.Resend(ctx, snap, next); err != nil {
			return lookAgain(err)
		}
	case st.Status == invoicestate.Resend:
		// Recorded by an earlier delivery: publish again (deduplicated).
	default:
		// The record moved on: this send was sent again already, or superseded.
		return nil
	}
	out := &events.InvoiceSubmitted{XML: ev.XML, Resubmission: next, Visualize: ev.Visualize}
	out.Meta = ev.Meta.Next()
	zerolog.Ctx(ctx).Info().Int("status", int(info.Status.Code)).Int("resubmission", next).Msg("KSeF cancelled the processing; sending the invoice again")
	if err := p.pub.Publish(ctx, out, nil); err != nil {
		return fmt.Errorf("publishing the resubmission: %w", err)
	}
	return nil
}

// batchStatus finds a batch invoice in its session's list, fetched at most once per TTL per
// session and shared by every invoice of the session. failed is the session's status when KSeF
// ended the session without processing the invoice (the package failed as a whole).
func (p *Poller) batchStatus(ctx context.Context, client *ksef.Client, ev *events.InvoiceSent) (info *ksefapi.InvoiceInfo, failed *ksefapi.StatusInfo, err error) {
	p.mu.Lock()
	l := p.lists[ev.SessionID]
	if l == nil {
		l = &sessionList{}
		p.lists[ev.SessionID] = l
		p.evictLists()
	}
	p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	lookup := func() *ksefapi.InvoiceInfo {
		if info, ok := l.byID[ev.KsefInvoiceID]; ok && ev.KsefInvoiceID != "" {
			return &info
		}
		if info, ok := l.byHash[ev.InvoiceHash]; ok {
			return &info
		}
		return nil
	}
	answer := func() (*ksefapi.InvoiceInfo, *ksefapi.StatusInfo, error) {
		if info := lookup(); info != nil {
			return info, nil, nil
		}
		if l.final {
			st := l.status
			return nil, &st, nil
		}
		return nil, nil, nil
	}
	now := p.cfg.Now()
	if info := lookup(); (info != nil && ksef.StatusCode(info.Status.Code).Final()) || l.final || now.Sub(l.fetched) < p.cfg.BatchListTTL {
		return answer()
	}
	// The status first: when it is final, the list fetched after it is complete.
	status, err := client.SessionStatus(ctx, ev.SessionID)
	if err != nil {
		return nil, nil, err
	}
	list, err := client.SessionInvoices(ctx, ev.SessionID)
	if err != nil {
		return nil, nil, err
	}
	l.fetched = now
	l.final = status.SessionStatus == ksefapi.Closed && status.Status.Code >= 200
	l.status = status.Status
	l.byID = make(map[string]ksefapi.InvoiceInfo, len(list))
	l.byHash = make(map[string]ksefapi.InvoiceInfo, len(list))
	for _, info := range list {
		if info.InvoiceId != nil {
			l.byID[*info.InvoiceId] = info
		}
		if info.InvoiceHash != nil {
			l.byHash[*info.InvoiceHash] = info
		}
	}
	return answer()
}

// evictLists forgets session lists not fetched for a while (their invoices have their outcomes,
// or will fetch the list anew); p.mu is held.
func (p *Poller) evictLists() {
	if len(p.lists) < 64 {
		return
	}
	now := p.cfg.Now()
	for id, l := range p.lists {
		if l.mu.TryLock() {
			if !l.fetched.IsZero() && now.Sub(l.fetched) > 10*p.cfg.BatchListTTL {
				delete(p.lists, id)
			}
			l.mu.Unlock()
		}
	}
}

// SessionClosed fetches and stores the UPO of a closed session.
func (p *Poller) SessionClosed(ctx context.Context, ev *events.SessionClosed, deliveries int) error {
	client, err := p.clients(ctx, ev.ContextNIP)
	if err != nil {
		return err
	}
	body, err := client.SessionUPO(ctx, ev.SessionID)
	if ksef.HasCode(err, ksef.CodeSessionNoUPO) {
		return p.noUPO(ctx, client, ev, deliveries)
	}
	if err != nil {
		return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("fetching the UPO: %w", err))
	}
	defer body.Close()
	// UPOs are paged at 10,000 entries: a few MB at most.
	upo, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the UPO: %w", err)
	}
	numbers, err := upoNumbers(upo)
	if err != nil {
		return fmt.Errorf("the UPO of session %s is not readable: %w", ev.SessionID, err)
	}
	loc := p.cfg.Layout.UPO(ev.ContextNIP, p.cfg.Now(), ev.SessionID)
	info, err := p.store.Put(ctx, loc.Bucket, loc.Key, bytes.NewReader(upo), int64(len(upo)),
		storage.ObjectMeta{ContentType: "application/xml", Metadata: map[string]string{storage.MetaSessionID: ev.SessionID}})
	if err != nil {
		return fmt.Errorf("storing the UPO: %w", err)
	}
	out := &events.SessionUpoStored{SessionID: ev.SessionID, KsefNumbers: numbers,
		UPO: &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size, ContentType: info.ContentType}}
	out.Meta = ev.Meta.Next()
	if err := p.pub.Publish(ctx, out, nil); err != nil {
		return fmt.Errorf("publishing session.upo_stored: %w", err)
	}
	return nil
}

// noUPO tells a UPO not generated yet (ask again later) from one that will never be: KSeF answers
// both with 1111, but a closed session whose invoices are all processed and none accepted (all
// duplicates, say) has no UPO to wait for.
func (p *Poller) noUPO(ctx context.Context, client *ksef.Client, ev *events.SessionClosed, deliveries int) error {
	info, err := client.SessionStatus(ctx, ev.SessionID)
	if err != nil {
		return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("asking for the session status: %w", err))
	}
	// A batch session with no invoices listed may still be unpacking its package, unless its
	// status says the package failed as a whole (4xx): then none will ever be.
	failedWhole := info.Batch && info.Status.Code >= 400
	if info.SessionStatus != ksefapi.Active && info.SuccessfulInvoiceCount == 0 &&
		info.FailedInvoiceCount >= info.InvoiceCount && (!info.Batch || info.InvoiceCount > 0 || failedWhole) {
		zerolog.Ctx(ctx).Info().Str("session_id", ev.SessionID).Int32("failed", info.FailedInvoiceCount).
			Msg("KSeF accepted no invoice of the session: it has no UPO")
		return nil
	}
	if at := ev.OccurredAt.Time; !at.IsZero() && p.cfg.Now().Sub(at) > p.cfg.Deadline {
		return worker.DeadLetter(events.KindDeadline, fmt.Errorf("KSeF gave no UPO for session %s (status %d) within %v of its close; fetch it later with `ksefctl get --upo`",
			ev.SessionID, info.Status.Code, p.cfg.Deadline))
	}
	return p.later(deliveries)
}

// upoNumbers lists the KSeF numbers a UPO confirms.
func upoNumbers(upo []byte) ([]string, error) {
	var doc struct {
		Documents []struct {
			Number string `xml:"NumerKSeFDokumentu"`
		} `xml:"Dokument"`
	}
	dec := xml.NewDecoder(bytes.NewReader(upo))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(doc.Documents))
	for _, d := range doc.Documents {
		out = append(out, d.Number)
	}
	return out, nil
}

func extension(info *ksefapi.InvoiceInfo, key string) string {
	if info.Status.Extensions == nil {
		return ""
	}
	for _, e := range *info.Status.Extensions {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}
