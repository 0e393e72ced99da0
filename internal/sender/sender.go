// Package sender turns invoice.submitted into invoice.sent: it loads the invoice (from storage,
// inline, or generated from structured data), validates it, and sends it to KSeF in a pooled
// interactive session (or a batch session when the context's online budget cannot carry its
// backlog), keeping per-invoice state shared by all replicas so that no invoice is sent twice.
package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Config of the sender.
type Config struct {
	Pool  PoolConfig
	Batch BatchConfig
	// Layout says where invoice XMLs are stored.
	Layout storage.Layout
	// MaxInvoiceSize bounds the invoice loaded (default 3 MB, KSeF's limit with attachments;
	// the validator holds invoices without attachments to 1 MB).
	MaxInvoiceSize int64
	// MemoryBudget bounds the invoice bytes all handlers hold at once, from loading an invoice
	// until it is sent or queued for a batch (default 4 MiB, at least MaxInvoiceSize). Handlers
	// over it wait before loading, holding nothing. An invoice costs more than its bytes while it
	// is validated (the decoded model, libxml2's buffers; the send streams its body in chunks),
	// so the default is small: four 1 MB invoices, or dozens of typical ones.
	MemoryBudget int64
	// Validations bounds the invoices validated or generated at once (default GOMAXPROCS):
	// it is CPU work whose garbage grows with the document, so more at once only costs memory.
	Validations int
	Now         func() time.Time
	// Log is for work done outside any message (batch packages).
	Log zerolog.Logger
	// BlockOnWarnings rejects invoices with warnings (what the checks KSeF does not make find,
	// fa3.Warnings) instead of sending them with the warnings on invoice.sent.
	BlockOnWarnings bool
	// CheckNIPs refuses invoices whose NIPs have wrong check digits, as production KSeF does
	// (and only production).
	CheckNIPs bool
	// Warned, when set, is told of every validated invoice that has warnings (a metric).
	Warned func(n int)
	// SendLease is how long after a send started its outcome may still be unknown: longer than
	// the KSeF client's request timeout plus its waits for limits and Retry-After. A redelivered
	// invoice waits that long before it is reconciled and, if KSeF never got it, sent again
	// (default 2m30s).
	SendLease time.Duration
}

// Sender handles invoice.submitted.
type Sender struct {
	cfg       Config
	clients   func(ctx context.Context, nip string) (*ksef.Client, error)
	batch     *batcher // nil: online only
	pool      *Pool
	states    *invoicestate.Store
	store     storage.Store
	validator *fa3.Validator
	pub       worker.Publisher
	mem       *budget
	cpu       *semaphore.Weighted
}

// New returns a sender. clients gives the KSeF client of a context (with its token and limiter).
func New(cfg Config, clients func(ctx context.Context, nip string) (*ksef.Client, error), states *invoicestate.Store, store storage.Store, validator *fa3.Validator, pub worker.Publisher) *Sender {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxInvoiceSize <= 0 {
		cfg.MaxInvoiceSize = fa3.MaxInvoiceSizeWithAttachments
	}
	if cfg.SendLease <= 0 {
		cfg.SendLease = 150 * time.Second
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = 4 << 20
	}
	cfg.MemoryBudget = max(cfg.MemoryBudget, cfg.MaxInvoiceSize)
	if cfg.Validations <= 0 {
		cfg.Validations = runtime.GOMAXPROCS(0)
	}
	s := &Sender{cfg: cfg, clients: clients, states: states, store: store, validator: validator, pub: pub,
		mem: newBudget(cfg.MemoryBudget), cpu: semaphore.NewWeighted(int64(cfg.Validations))}
	if !cfg.Batch.Disabled {
		s.batch = newBatcher(s, cfg.Batch, cfg.Log)
	}
	s.pool = NewPool(cfg.Pool, clients, s.sessionClosed, cfg.Now)
	return s
}

// Close closes the pooled sessions, publishing session.closed for each.
func (s *Sender) Close(ctx context.Context) { s.pool.Close(ctx) }

// RunIdleCloser closes idle sessions until ctx ends (see PoolConfig.CloseIdle).
func (s *Sender) RunIdleCloser(ctx context.Context) { s.pool.RunIdleCloser(ctx) }

func (s *Sender) sessionClosed(ctx context.Context, cs ClosedSession) {
	log := zerolog.Ctx(ctx)
	if cs.Err != nil {
		log.Warn().Err(cs.Err).Str("session_id", cs.SessionID).Msg("closing a KSeF session failed; it will expire in KSeF")
	}
	ev := &events.SessionClosed{SessionID: cs.SessionID, Mode: events.ModeOnline, InvoiceCount: cs.Invoices}
	ev.ContextNIP = cs.ContextNIP
	if err := s.pub.Publish(ctx, ev, nil); err != nil {
		log.Error().Err(err).Str("session_id", cs.SessionID).Msg("publishing session.closed failed; its UPO will not be fetched")
	}
}

// Submit sends one submitted invoice, at most once.
func (s *Sender) Submit(ctx context.Context, ev *events.InvoiceSubmitted) error {
	nip := ev.ContextNIP
	key := invoicestate.Key(nip, ev.InvoiceID)
	digest := sourceDigest(ev)
	snap, err := s.states.Get(ctx, key)
	if err != nil {
		return err
	}
	st := snap.State
	same := st != nil && st.SourceDigest == digest
	if same && ev.Resubmission < st.Resubmission {
		return nil // an older delivery of an invoice the pipeline has resubmitted since
	}
	if same && ev.Resubmission == st.Resubmission {
		switch st.Status {
		case invoicestate.Sent:
			// Redelivered after the send: publish again (deduplicated by Nats-Msg-Id).
			return s.publishSent(ctx, ev, st)
		case invoicestate.Rejected, invoicestate.Failed:
			return nil // its terminal event was published before the state was written
		case invoicestate.BatchQueued:
			// Queued for a batch before: queue it again (deduplicated); the assembler owns it.
			return s.publishQueued(ctx, ev, st)
		case invoicestate.Sending:
			if st.Mode == events.ModeBatch {
				// In a batch package: the assembler sees it through (or reconciles it).
				return s.publishQueued(ctx, ev, st)
			}
		}
	}

	mem, err := s.mem.take(ctx, s.expectedSize(ev))
	if err != nil {
		return err
	}
	defer mem.release()
	xml, ref, rejection, err := s.load(ctx, ev, mem)
	if err != nil {
		return err
	}
	if rejection == nil && ev.Offline && s.batch == nil {
		rejection = rejectInput("an offline invoice goes to KSeF only in a batch session opened with offline: true, and batch sessions are off (" + EnvBatchHint + ")")
	}
	if rejection != nil {
		return s.reject(ctx, ev, snap, digest, rejection)
	}
	inv, warnings, rejection, err := s.validate(ctx, ev, xml)
	if err != nil {
		return err
	}
	if rejection != nil {
		return s.reject(ctx, ev, snap, digest, rejection)
	}
	if st != nil && (!same || ev.Resubmission > st.Resubmission) {
		// Another submission under the same ERP id (a corrected invoice), or a resubmission whose
		// record was not written: a new life.
		fresh := invoicestate.State{SourceDigest: digest, Resubmission: ev.Resubmission, Attempt: st.Attempt}
		if err := s.states.Restart(ctx, snap, fresh); err != nil {
			return lookAgain(err)
		}
		st, same = snap.State, true
	}
	stored := storedAt(ref)
	if ref == nil {
		// Inline and generated invoices are stored once valid, so every later event can point at
		// them. The write overlaps the send (where it goes and the hash are known before it
		// ends); nothing records the send or announces it before the write has ended.
		stored = s.storeXMLAsync(ctx, ev, xml, inv.InvoiceNumber())
		defer stored.wait() // it reads xml
		ref = s.expectedRef(ev, xml)
	}
	hash := ref.SHA256 // of these bytes: computed by load, or here for an invoice being stored

	if same && st.Resubmission == ev.Resubmission && st.Status == invoicestate.Sending && st.SessionID != "" {
		// Another handler (a replica, or this worker before a restart) may still be waiting for
		// KSeF's answer: the session's list cannot tell "in flight" from "lost" until its
		// request has surely ended.
		if age := s.cfg.Now().Sub(st.UpdatedAt); age < s.cfg.SendLease {
			return worker.Snooze(s.cfg.SendLease - age)
		}
		// A previous attempt may have reached KSeF: find it before sending again.
		found, err := s.reconcile(ctx, nip, st, hash)
		if err != nil {
			return err
		}
		if found != nil {
			if ref, err = stored.wait(); err != nil {
				return err
			}
			sent := *st
			sent.XML, sent.InvoiceNumber = ref, inv.InvoiceNumber() // what this delivery loaded
			if err := s.states.MarkSentIn(ctx, snap, sent, deref(found.InvoiceId)); err != nil {
				return lookAgain(err)
			}
			return s.publishSent(ctx, ev, snap.State)
		}
	}

	attempt := 1
	if st != nil {
		attempt = st.Attempt + 1
	}
	base := invoicestate.State{SourceDigest: digest, Resubmission: ev.Resubmission, InvoiceHash: hash,
		Attempt: attempt, XML: ref, InvoiceNumber: inv.InvoiceNumber(), Offline: ev.Offline, Visualize: ev.Visualize,
		Warnings: warnings}
	// The seed's interactive send has no offline mode (offline invoices go in batch sessions
	// opened with offline: true), and KSeF takes invoices with attachments only in batch sessions.
	batchOnly := ev.Offline || inv.Zalacznik != nil
	if inv.Zalacznik != nil && s.batch == nil {
		return s.reject(ctx, ev, snap, digest, &events.InvoiceRejected{Code: int(ksef.StatusAttachment),
			Description: ksef.StatusAttachment.Description(), Stage: events.StageValidate,
			Details: []string{"KSeF takes invoices with attachments only in batch sessions, and batch sessions are off (" + EnvBatchHint + ")"}})
	}
	if !batchOnly {
		err = s.sendOnline(ctx, ev, snap, base, xml, stored)
	}
	ref, serr := stored.wait() // the write reads xml
	mem.release()              // a batch package reads the stored copy
	var we *ratelimit.WaitError
	if !batchOnly && !errors.As(err, &we) {
		return err
	}
	if serr != nil {
		return serr
	}
	base.XML = ref
	if s.batch == nil {
		return worker.Snooze(we.Wait + jitter(we.Wait))
	}
	// The context's online budget cannot carry its backlog: this invoice is queued for a batch
	// package (see HandleBatch) and its submission is done with.
	return s.queueForBatch(ctx, ev, snap, base)
}

// EnvBatchHint names the setting that turns batch sessions on, for messages to users.
const EnvBatchHint = "KSEF_BATCH=true"

// lookAgain turns a lost compare-and-set into a short snooze: another handler moved the invoice
// on, and the next delivery acts on what it did. Other errors pass.
func lookAgain(err error) error {
	if errors.Is(err, invoicestate.ErrChanged) {
		return worker.Snooze(time.Second + jitter(time.Second))
	}
	return err
}

// jitter spreads invoices waiting for the same request slot, so they do not all come back at once.
func jitter(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d)/2 + 1)) }

// sendOnline sends the invoice in the context's interactive session and, once stored says the
// XML is stored, records and announces the send. A *ratelimit.WaitError says nothing was sent
// because the next request slot is too far away (snap is then as the send left it).
func (s *Sender) sendOnline(ctx context.Context, ev *events.InvoiceSubmitted, snap *invoicestate.Snapshot, base invoicestate.State, xml []byte, stored *xmlWrite) error {
	nip := ev.ContextNIP
	lease, err := s.pool.Acquire(ctx, nip)
	var we *ratelimit.WaitError
	if errors.As(err, &we) {
		return we
	}
	if err != nil {
		return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("opening a KSeF session: %w", err))
	}
	if err := stored.failed(); err != nil {
		// The XML could not be stored: nothing is sent that could not be announced.
		lease.Release(ctx, false, false)
		return err
	}
	if err := s.states.StartOnline(ctx, snap, base, lease.Session.ID); err != nil {
		lease.Release(ctx, false, false)
		// ErrChanged: another replica is handling the same invoice right now.
		return lookAgain(err)
	}

	// The send ends before its lease does, retries included: a redelivery that finds the state
	// still sending after the lease knows no request of this send is in flight.
	sctx, cancel := context.WithTimeout(ctx, s.sendDeadline())
	resp, err := lease.Session.Send(sctx, xml)
	cancel()
	if err != nil {
		var ke *ksef.Error
		answered := errors.As(err, &ke) && !ke.Temporary() // a definite refusal: nothing was taken
		rejected := answered && invoiceFault(ke.Code)
		broken := answered && !rejected && s.sessionEnded(ctx, lease, ke)
		lease.Release(ctx, errors.Is(err, ksef.ErrAmbiguous), broken)
		if errors.As(err, &we) || (answered && !rejected) {
			// Nothing left this process, or KSeF refused it: record that, so the next delivery
			// neither waits for the send lease nor needs to reconcile.
			if perr := s.states.Unsent(ctx, snap); perr != nil {
				zerolog.Ctx(ctx).Warn().Err(perr).Msg("recording the queued state failed")
				if errors.As(err, &we) {
					return lookAgain(perr) // the record moved on: look again rather than batch it
				}
			}
		}
		switch {
		case errors.As(err, &we):
			return we
		case errors.Is(err, ksef.ErrAmbiguous), sctx.Err() != nil && ctx.Err() == nil:
			// Maybe sent: the next delivery reconciles through ksefSessionInvoices.
			zerolog.Ctx(ctx).Warn().Err(err).Msg("send outcome unknown; will reconcile before sending again")
			return worker.Snooze(2 * time.Second)
		case rejected:
			return s.reject(ctx, ev, snap, base.SourceDigest, &events.InvoiceRejected{
				Code: int(ke.Code), Description: ke.Description, Details: nonEmpty(ke.Details), Stage: events.StageSend})
		case broken:
			// KSeF ended the session (expired, closed under us): the pool has let it go and
			// published session.closed; the invoice goes into a new session right away.
			zerolog.Ctx(ctx).Info().Str("session_id", lease.Session.ID).Msg("KSeF ended the session; sending in a new one")
			return worker.Snooze(0)
		}
		return worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("sending: %w", err))
	}
	lease.Release(ctx, true, false)
	ref, err := stored.wait()
	if err != nil {
		// KSeF has the invoice and its state says sending: the redelivery stores the XML again
		// and, after the send lease, finds the send in the session's list.
		return err
	}
	snap.State.XML = ref
	return s.markSent(ctx, ev, snap, resp.Id)
}

// sendDeadline bounds one send, its retries and waits for limits included, within the send lease.
func (s *Sender) sendDeadline() time.Duration {
	return max(s.cfg.SendLease*9/10, s.cfg.SendLease-15*time.Second)
}

// invoiceFault reports the send errors that are about the invoice itself, so sending it again
// unchanged would fail again: the invoice is rejected. Every other refusal is about the session or
// the service and is retried.
func invoiceFault(c ksef.Code) bool {
	switch c {
	case ksef.CodeInvoiceVersion, ksef.CodeInvoiceSize, ksef.CodeInvoiceFormat, ksef.CodeInvoiceInput:
		return true
	}
	return false
}

// sessionEnded reports whether a refused send means the session is no longer usable: unknown or
// foreign to us (1109, 1110), or, for any other refusal, no longer active when asked.
func (s *Sender) sessionEnded(ctx context.Context, lease *Lease, ke *ksef.Error) bool {
	if ke.Code == ksef.CodeSessionUnknown || ke.Code == ksef.CodeSessionAccess {
		return true
	}
	info, err := lease.Client.SessionStatus(ctx, lease.Session.ID)
	if err != nil {
		return isSessionGone(err)
	}
	return info.SessionStatus != ksefapi.Active
}

// reconcile looks for an earlier attempt in its session's invoice list.
func (s *Sender) reconcile(ctx context.Context, nip string, st *invoicestate.State, hash string) (*ksefapi.InvoiceInfo, error) {
	lease, err := s.pool.Acquire(ctx, nip)
	if err != nil {
		return nil, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("opening a KSeF session: %w", err))
	}
	client := lease.Client
	lease.Release(ctx, false, false)
	list, err := client.SessionInvoices(ctx, st.SessionID)
	if err != nil {
		if ksef.HasCode(err, ksef.CodeSessionUnknown) {
			return nil, nil // the session never existed for KSeF: nothing was sent in it
		}
		return nil, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("reconciling an earlier send: %w", err))
	}
	for i := range list {
		if list[i].InvoiceHash != nil && *list[i].InvoiceHash == hash {
			return &list[i], nil
		}
	}
	return nil, nil
}

// markSent records a send KSeF took and announces it. When the record moved on meanwhile (a
// corrected invoice submitted under the same id), the send is still announced: KSeF has it, and
// the poller follows it to its outcome.
func (s *Sender) markSent(ctx context.Context, ev *events.InvoiceSubmitted, snap *invoicestate.Snapshot, invoiceID string) error {
	sent := *snap.State
	sent.Status, sent.InvoiceID, sent.UpdatedAt = invoicestate.Sent, invoiceID, s.cfg.Now()
	if err := s.states.MarkSent(ctx, snap, invoiceID); err != nil {
		// The send happened; the event below still records it.
		zerolog.Ctx(ctx).Warn().Err(err).Msg("recording the sent state failed")
	}
	return s.publishSent(ctx, ev, &sent)
}

func (s *Sender) publishSent(ctx context.Context, ev *events.InvoiceSubmitted, st *invoicestate.State) error {
	out := &events.InvoiceSent{KsefInvoiceID: st.InvoiceID, SessionID: st.SessionID, Mode: st.Mode,
		InvoiceHash: st.InvoiceHash, SentAt: events.At(st.UpdatedAt), XML: st.XML, InvoiceNumber: st.InvoiceNumber,
		Visualize: ev.Visualize || st.Visualize, Warnings: st.Warnings}
	out.Meta = ev.Meta.Next()
	if err := s.pub.Publish(ctx, out, nil); err != nil {
		return fmt.Errorf("publishing invoice.sent: %w", err)
	}
	return nil
}

// reject publishes invoice.rejected and records it. A record of another submission under the
// same id is left alone (its life goes on); the rejection is of this one.
func (s *Sender) reject(ctx context.Context, ev *events.InvoiceSubmitted, snap *invoicestate.Snapshot, digest string, r *events.InvoiceRejected) error {
	r.Meta = ev.Meta.Next()
	if err := s.pub.Publish(ctx, r, nil); err != nil {
		return fmt.Errorf("publishing invoice.rejected: %w", err)
	}
	zerolog.Ctx(ctx).Info().Int("code", r.Code).Str("stage", r.Stage).Str("reason", r.Description).Msg("invoice rejected")
	if snap.State != nil && snap.State.SourceDigest != digest {
		return nil
	}
	attempt := 0
	if snap.State != nil {
		attempt = snap.State.Attempt
	}
	rejected := invoicestate.State{SourceDigest: digest, Resubmission: ev.Resubmission, Attempt: attempt, Reason: r.Description}
	if err := s.states.Reject(ctx, snap, rejected); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("recording the rejected state failed")
	}
	return nil
}

func (s *Sender) xmlLocation(ev *events.InvoiceSubmitted) storage.Location {
	return s.cfg.Layout.InvoiceXML(ev.ContextNIP, ev.OccurredAt.Time, ev.InvoiceID)
}

// expectedSize is how many bytes of the memory budget loading ev takes before its size is known.
func (s *Sender) expectedSize(ev *events.InvoiceSubmitted) int64 {
	switch {
	case ev.XML != nil && ev.XML.Size > 0:
		return min(ev.XML.Size, s.cfg.MaxInvoiceSize)
	case ev.XML == nil && len(ev.InlineXML) > 0:
		return int64(len(ev.InlineXML))
	case ev.XML == nil && len(ev.Generate) > 0:
		// The generator makes no attachments: at most KSeF's limit without them.
		return min(s.cfg.MaxInvoiceSize, fa3.MaxInvoiceSize)
	}
	return s.cfg.MaxInvoiceSize
}

// load returns the invoice XML and, for an invoice the ERP stored, where it is (nil for inline
// and generated invoices, stored once valid). mem is fitted to the XML's size. A rejection is
// returned for problems of the input; an error for problems worth retrying.
func (s *Sender) load(ctx context.Context, ev *events.InvoiceSubmitted, mem *share) ([]byte, *events.ObjectRef, *events.InvoiceRejected, error) {
	var xml []byte
	switch {
	case ev.XML != nil:
		if err := s.confineXML(ev); err != nil {
			return nil, nil, nil, err
		}
		rc, info, err := s.store.Get(ctx, ev.XML.Bucket, ev.XML.Key)
		if err == nil && info.Size > mem.n && info.Size <= s.cfg.MaxInvoiceSize {
			// Bigger than the event said: wait for its share without keeping the object open.
			rc.Close()
			if err := mem.fit(ctx, info.Size); err != nil {
				return nil, nil, nil, err
			}
			rc, info, err = s.store.Get(ctx, ev.XML.Bucket, ev.XML.Key)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil, rejectInput("the referenced invoice object does not exist", ev.XML.Bucket+"/"+ev.XML.Key), nil
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading the invoice object: %w", err)
		}
		defer rc.Close()
		if info.Size > s.cfg.MaxInvoiceSize {
			return nil, nil, s.tooLarge(info.Size), nil
		}
		// Read at most the share: an object that grew after its size was read is retried, not
		// let past the budget.
		xml, err = readAtMost(rc, info.Size, mem.n)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading the invoice object: %w", err)
		}
		if int64(len(xml)) > mem.n {
			return nil, nil, nil, fmt.Errorf("reading the invoice object: it changed while read (over %d bytes)", mem.n)
		}
		sum := hashBase64(xml)
		if ev.XML.SHA256 != "" && sum != ev.XML.SHA256 {
			return nil, nil, rejectInput("the invoice object's SHA-256 does not match the event", "event "+ev.XML.SHA256+", object "+sum), nil
		}
		ref := *ev.XML
		ref.SHA256, ref.Size = sum, int64(len(xml))
		return xml, &ref, nil, mem.fit(ctx, ref.Size)
	case len(ev.InlineXML) > 0:
		xml = ev.InlineXML
	case len(ev.Generate) > 0:
		var req ksefapi.KsefInvoiceGenerateRequest
		dec := json.NewDecoder(bytes.NewReader(ev.Generate))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, nil, rejectInput("the structured invoice is not valid JSON of a generate request", err.Error()), nil
		}
		if err := s.cpu.Acquire(ctx, 1); err != nil {
			return nil, nil, nil, err
		}
		// The event's time is the generation time: a redelivery generates the same bytes, so
		// the invoice is recognized in KSeF instead of sent again.
		at := ev.OccurredAt.Time
		var err error
		xml, err = fa3.Generate(fa3wire.Request(req), fa3.WithValidator(s.validator), fa3.WithClock(func() time.Time { return at }))
		s.cpu.Release(1)
		if err != nil {
			return nil, nil, rejectInput("the structured invoice cannot be turned into FA(3)", err.Error()), nil
		}
	default:
		return nil, nil, rejectInput("the event carries no invoice"), nil
	}
	if int64(len(xml)) > s.cfg.MaxInvoiceSize {
		return nil, nil, s.tooLarge(int64(len(xml))), nil
	}
	return xml, nil, nil, mem.fit(ctx, int64(len(xml)))
}

// xmlWrite is an invoice XML being stored while the invoice is sent.
type xmlWrite struct {
	done chan struct{}
	ref  *events.ObjectRef
	err  error
}

// storedAt is the xmlWrite of an XML already stored at ref.
func storedAt(ref *events.ObjectRef) *xmlWrite {
	w := &xmlWrite{done: make(chan struct{}), ref: ref}
	close(w.done)
	return w
}

// wait returns where the XML is once the write has ended.
func (w *xmlWrite) wait() (*events.ObjectRef, error) {
	<-w.done
	return w.ref, w.err
}

// failed returns the write's error if it has already ended with one.
func (w *xmlWrite) failed() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// storeXMLAsync starts storing an inline or generated invoice (see storeXML).
func (s *Sender) storeXMLAsync(ctx context.Context, ev *events.InvoiceSubmitted, xml []byte, number string) *xmlWrite {
	w := &xmlWrite{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.ref, w.err = s.storeXML(ctx, ev, xml, number)
	}()
	return w
}

// expectedRef is where storeXML puts xml, known before the write ends.
func (s *Sender) expectedRef(ev *events.InvoiceSubmitted, xml []byte) *events.ObjectRef {
	loc := s.xmlLocation(ev)
	return &events.ObjectRef{Bucket: loc.Bucket, Key: loc.Key, SHA256: hashBase64(xml), Size: int64(len(xml)), ContentType: xmlContentType}
}

const xmlContentType = "application/xml"

func (s *Sender) storeXML(ctx context.Context, ev *events.InvoiceSubmitted, xml []byte, number string) (*events.ObjectRef, error) {
	loc := s.xmlLocation(ev)
	meta := storage.ObjectMeta{ContentType: xmlContentType, Metadata: map[string]string{
		storage.MetaInvoiceID: ev.InvoiceID, storage.MetaInvoiceNumber: number}}
	info, err := s.store.Put(ctx, loc.Bucket, loc.Key, bytes.NewReader(xml), int64(len(xml)), meta)
	if err != nil {
		return nil, fmt.Errorf("storing the invoice XML: %w", err)
	}
	return &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size, ContentType: info.ContentType}, nil
}

// validate checks the invoice as KSeF would, as far as that can be done here: its XML rules,
// schema and size (430), the context (410), the issue date (450) and, with CheckNIPs, the NIP
// check digits (450). What KSeF does not check (fa3.Warnings) comes back as warnings, a
// rejection only with BlockOnWarnings. It returns an error only when ctx ended while waiting for
// a validation slot.
func (s *Sender) validate(ctx context.Context, ev *events.InvoiceSubmitted, xml []byte) (*fa3.Invoice, []string, *events.InvoiceRejected, error) {
	if err := s.cpu.Acquire(ctx, 1); err != nil {
		return nil, nil, nil, err
	}
	defer s.cpu.Release(1)
	res, err := s.validator.Validate(ctx, xml)
	if err != nil {
		return nil, nil, &events.InvoiceRejected{Code: int(ksef.StatusInvalid), Description: ksef.StatusInvalid.Description(),
			Details: []string{err.Error()}, Stage: events.StageValidate}, nil
	}
	inv := res.Invoice
	if seller := inv.SellerNIP(); seller != ev.ContextNIP {
		return nil, nil, &events.InvoiceRejected{Code: int(ksef.StatusPermission), Description: ksef.StatusPermission.Description(),
			Details: []string{fmt.Sprintf("the seller's NIP %s is not the context %s", seller, ev.ContextNIP)}, Stage: events.StageValidate}, nil
	}
	semantic := fa3.CheckIssueDate(inv, s.cfg.Now())
	if semantic == nil && s.cfg.CheckNIPs {
		semantic = fa3.CheckNIPs(inv)
	}
	if semantic != nil {
		return nil, nil, &events.InvoiceRejected{Code: int(ksef.StatusSemantic), Description: ksef.StatusSemantic.Description(),
			Details: []string{semantic.Error()}, Stage: events.StageValidate}, nil
	}
	warnings := fa3.Warnings(inv)
	if len(warnings) > 0 {
		if s.cfg.Warned != nil {
			s.cfg.Warned(len(warnings))
		}
		if s.cfg.BlockOnWarnings {
			return nil, nil, &events.InvoiceRejected{Description: "the invoice has warnings and blocking on warnings is on (KSEF_BLOCK_ON_WARNINGS)",
				Details: warnings, Stage: events.StageValidate}, nil
		}
	}
	return inv, warnings, nil, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// tooLarge is the rejection of an invoice over the size limit: KSeF refuses the file (430).
func (s *Sender) tooLarge(n int64) *events.InvoiceRejected {
	return &events.InvoiceRejected{Code: int(ksef.StatusInvalid), Description: ksef.StatusInvalid.Description(), Stage: events.StageValidate,
		Details: []string{fmt.Sprintf("the invoice is %d bytes, over the limit of %d", n, s.cfg.MaxInvoiceSize)}}
}

func rejectInput(description string, details ...string) *events.InvoiceRejected {
	return &events.InvoiceRejected{Code: 0, Description: description, Details: details, Stage: events.StageValidate}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// sourceDigest identifies what the ERP submitted (the event id of its submission), so that a
// corrected invoice under the same ERP id is a new invoice and a redelivery is the same one.
func sourceDigest(ev *events.InvoiceSubmitted) string {
	orig := *ev
	orig.Resubmission = 0
	return events.MsgID(&orig)
}
