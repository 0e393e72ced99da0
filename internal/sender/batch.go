package sender

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// BatchConfig says how a context's invoices go through batch sessions. When the next online send
// is further away than the KSeF client waits for a request slot (KSEF_MAX_LIMIT_WAIT), the
// context's online budget cannot carry its backlog: the invoice is queued for a batch
// (batch.queued.<nip>) and its submission acked. The batch assembler (HandleBatch, a worker of
// its own in the sender's process) gathers the queued invoices of each context into packages,
// holding their queue messages until the package is sent, so a package's size does not depend on
// how many handlers the sender runs.
type BatchConfig struct {
	// Disabled keeps every invoice online (waiting for the limits).
	Disabled bool
	// Linger is how long a package waits for more invoices after its first (default 3 s).
	Linger time.Duration
	// MaxInvoices per package (KSeF: at most 10,000 per session).
	MaxInvoices int
	// MaxPartSize is the largest part before encryption (KSeF: 100 MB); MaxParts the most parts
	// (KSeF: 50).
	MaxPartSize int64
	MaxParts    int
	// UploadConcurrency is how many parts upload at once (the Ministry recommends parallel
	// uploads; they are not limited).
	UploadConcurrency int
	// TempDir holds a package and its encrypted parts while they are sent ("" = os.TempDir()).
	TempDir string
	// Lease is how long an assembler may work on a package, from taking its invoices until its
	// session is closed (default 10 min). A package not through by then is given up, and its
	// invoices may go into another package (after the send lease, once KSeF's session list
	// shows they are not in the first). At least Linger + Interval + 5 s.
	Lease time.Duration
	// Interval is the least time between two packages of a context, unless the second is full
	// (0: none). KSeF opens 60 batch sessions an hour per context: packages flushed every Linger
	// would spend them on a few seconds of backlog each; one a minute keeps within them, and a
	// package then carries a minute of backlog (up to MaxInvoices).
	Interval time.Duration
	// Open, when set, counts the batch sessions open (from opening to closing).
	Open Gauge
	// Deadline is how long after its submission an invoice may wait for a package; past it, it is
	// failed with a dead letter (default 24 h; KSeF takes offline invoices up to the next working
	// day, and a queue that long means the context cannot send at all).
	Deadline time.Duration
	// ReconcileAfter is how soon the invoices of a package whose close failed, or whose answer
	// was lost, are reconciled with the session's status (default 5 s).
	ReconcileAfter time.Duration
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.Linger <= 0 {
		c.Linger = 3 * time.Second
	}
	if c.MaxInvoices <= 0 || c.MaxInvoices > 10000 {
		c.MaxInvoices = 10000
	}
	if c.MaxPartSize <= 0 || c.MaxPartSize > 100_000_000 {
		c.MaxPartSize = 100_000_000
	}
	if c.MaxParts <= 0 || c.MaxParts > 50 {
		c.MaxParts = 50
	}
	if c.UploadConcurrency <= 0 {
		c.UploadConcurrency = 4
	}
	if c.Lease <= 0 {
		c.Lease = 10 * time.Minute
	}
	if c.Deadline <= 0 {
		c.Deadline = 24 * time.Hour
	}
	if c.ReconcileAfter <= 0 {
		c.ReconcileAfter = 5 * time.Second
	}
	c.Lease = max(c.Lease, c.Linger+c.Interval+5*time.Second) // a package waits within its invoices' lease
	return c
}

// MaxHeld is how many queue messages the assembler may hold at once: a full package being sent
// while the next one fills. The batch worker's MaxAckPending must allow it.
func (c BatchConfig) MaxHeld() int { return 2*c.withDefaults().MaxInvoices + 100 }

// MaxAckPending is what the batch worker's consumer needs: the messages held (MaxHeld) and room
// for the items of ten packages being reconciled (a close whose answer was lost, a package KSeF
// is still processing): their snoozed messages count toward MaxAckPending too, and must not keep
// other contexts' invoices out.
func (c BatchConfig) MaxAckPending() int { return c.MaxHeld() + 10*c.withDefaults().MaxInvoices }

// stateWrites bounds the state writes and publishes of one package done at once.
const stateWrites = 16

// queueForBatch records that the invoice waits for a batch package and publishes its queue item;
// the submission is then done with. snap is the record as this handler last wrote or read it: a
// record that moved on meanwhile is looked at again, never overwritten.
func (s *Sender) queueForBatch(ctx context.Context, ev *events.InvoiceSubmitted, snap *invoicestate.Snapshot, base invoicestate.State) error {
	if err := s.states.QueueForBatch(ctx, snap, base, ""); err != nil {
		return lookAgain(err)
	}
	return s.publishQueued(ctx, ev, snap.State)
}

// publishQueued publishes the queue item of an invoice waiting for a batch; its id is the same
// for every delivery of the submission's attempt, so a redelivery queues it once.
func (s *Sender) publishQueued(ctx context.Context, ev *events.InvoiceSubmitted, st *invoicestate.State) error {
	item := QueueItem(st)
	item.Meta = ev.Meta.Next()
	item.Visualize = item.Visualize || ev.Visualize
	if err := s.pub.Publish(ctx, item, nil); err != nil {
		return fmt.Errorf("publishing batch.queued: %w", err)
	}
	return nil
}

// QueueItem is the batch.queued item of an invoice recorded as st (its Meta left to the caller).
// The poller uses it to put back the invoices of a package KSeF failed as a whole.
func QueueItem(st *invoicestate.State) *events.BatchQueued {
	return &events.BatchQueued{Source: sourceID(st.SourceDigest), Resubmission: st.Resubmission, Requeue: st.Requeues,
		XML: st.XML, InvoiceHash: st.InvoiceHash, InvoiceNumber: st.InvoiceNumber, Visualize: st.Visualize, Offline: st.Offline}
}

// sourceID is the submission's identity as the queue item carries it: a fixed-size digest of the
// state's source, which grows with the ERP's invoice id.
func sourceID(sourceDigest string) string {
	h := sha256.Sum256([]byte(sourceDigest))
	return hex.EncodeToString(h[:16])
}

// HandleBatch is the worker handler of batch.queued: the batch assembler. It holds each queue
// message (worker.Message.Hold) until the invoice's package was sent.
func (s *Sender) HandleBatch(ctx context.Context, m *worker.Message) error {
	return worker.For(s.assemble)(ctx, m)
}

func (s *Sender) assemble(ctx context.Context, q *events.BatchQueued, m *worker.Message) error {
	if s.batch == nil {
		return worker.Snooze(time.Minute) // batches are off here; another replica may take it
	}
	return s.batch.handle(ctx, q, m.Hold, m.Deliveries)
}

// CloseBatch gives up the packages not yet sent (their messages are retried) and waits for
// those being sent until ctx ends, then cancels them. Call it after the batch worker stopped.
func (s *Sender) CloseBatch(ctx context.Context) {
	if s.batch != nil {
		s.batch.close(ctx)
	}
}

// batchItem is one invoice in a package. Its XML stays in storage until the package is built,
// so a package of 10,000 invoices costs little memory.
type batchItem struct {
	q      *events.BatchQueued
	snap   *invoicestate.Snapshot // the record as the assembler last wrote it
	settle func(error)
}

func (it *batchItem) state() *invoicestate.State { return it.snap.State }

// batcher is the batch assembler: it gathers the queued invoices of each context into packages.
type batcher struct {
	s     *Sender
	cfg   BatchConfig
	owner string // this assembler, in the states of the invoices it packs
	// base carries the worker's logger and ends on close; a package outlives the handlers that
	// gave it its invoices.
	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]*pendingBatch // by context NIP
	flushed map[string]time.Time     // by context NIP: when its last package left
	holding map[string]bool          // state keys in a package here, pending or being sent
	closed  bool
	sending sync.WaitGroup

	sessions sessionFacts
}

type pendingBatch struct {
	items []*batchItem
	size  int64         // XML bytes
	full  chan struct{} // closed when the package cannot take more
}

func newBatcher(s *Sender, cfg BatchConfig, log zerolog.Logger) *batcher {
	var id [8]byte
	rand.Read(id[:])
	base, cancel := context.WithCancel(log.WithContext(context.Background()))
	return &batcher{s: s, cfg: cfg.withDefaults(), owner: hex.EncodeToString(id[:]), base: base, cancel: cancel,
		pending: map[string]*pendingBatch{}, holding: map[string]bool{}, flushed: map[string]time.Time{}}
}

// handle takes one queue item: into a package when the invoice is waiting for one, else it
// finishes what an earlier package left (the invoice found sent, or not, in its session).
func (b *batcher) handle(ctx context.Context, q *events.BatchQueued, hold func() func(error), deliveries int) error {
	s := b.s
	key := invoicestate.Key(q.ContextNIP, q.InvoiceID)
	snap, err := s.states.Get(ctx, key)
	if err != nil {
		return err
	}
	st := snap.State
	if st == nil || sourceID(st.SourceDigest) != q.Source || st.Resubmission != q.Resubmission {
		return nil // the invoice was submitted anew since: this item is stale
	}
	now := s.cfg.Now()
	switch {
	case st.Status == invoicestate.Sent:
		// The package was sent and the ack lost: announce it again (deduplicated).
		return s.publishSent(ctx, submittedOf(q), st)
	case st.Status == invoicestate.BatchQueued:
		if b.isHolding(key) {
			// In a package here (a second item of it), or put back while that package is still
			// being announced or released: look again once the package has let go of it. Never
			// acked here: the claim may not have been taken back (NATS unavailable), and then
			// this item is what carries the invoice into its next package.
			return worker.Snooze(b.cfg.ReconcileAfter)
		}
		if st.Packer != "" && st.Packer != b.owner {
			if age := now.Sub(st.UpdatedAt); age < b.cfg.Lease {
				return worker.Snooze(b.cfg.Lease - age) // in another assembler's package
			}
		}
		if b.cfg.Deadline > 0 && !st.SubmittedAt.IsZero() && now.Sub(st.SubmittedAt) > b.cfg.Deadline {
			return b.fail(ctx, snap, fmt.Sprintf("no batch package took the invoice within %v of its submission", b.cfg.Deadline))
		}
	case st.Status == invoicestate.Sending && st.Mode == events.ModeBatch:
		// A package with this invoice was declared as session st.SessionID and not seen through
		// (its close failed or its answer was lost, or its assembler died).
		v, listed, err := b.inSession(ctx, q.ContextNIP, st.SessionID, st.InvoiceHash)
		if err != nil {
			return err
		}
		switch v {
		case verdictSent:
			if err := s.states.MarkSent(ctx, snap, ""); err != nil {
				return lookAgain(err)
			}
			// The package's assembler may have died before announcing the session: its UPO is
			// fetched on session.closed (deduplicated with every other invoice of the package).
			closed := &events.SessionClosed{SessionID: st.SessionID, Mode: events.ModeBatch, InvoiceCount: listed}
			closed.ContextNIP = q.ContextNIP
			if err := s.pub.Publish(ctx, closed, nil); err != nil {
				return fmt.Errorf("publishing session.closed: %w", err)
			}
			return s.publishSent(ctx, submittedOf(q), snap.State)
		case verdictProcessing:
			if b.cfg.Deadline > 0 && !st.SubmittedAt.IsZero() && now.Sub(st.SubmittedAt) > b.cfg.Deadline {
				return b.fail(ctx, snap, fmt.Sprintf("batch session %s was still processing its package %v after the invoice's submission", st.SessionID, b.cfg.Deadline))
			}
			// Asked again sooner at first: a package is usually processed in seconds, but
			// may take hours.
			return worker.Snooze(min(time.Duration(deliveries)*b.cfg.ReconcileAfter, time.Minute))
		case verdictOpen:
			// Never closed as far as KSeF says: its assembler may still be uploading or closing
			// until its lease and a request's time have passed; after that, nothing will close it.
			if age := now.Sub(st.UpdatedAt); age < b.cfg.Lease+s.cfg.SendLease {
				return worker.Snooze(b.cfg.Lease + s.cfg.SendLease - age)
			}
		}
		// KSeF never processed it: it goes into a new package.
	default:
		// Rejected, failed, or taken back by the submission's own path: nothing to send here.
		return nil
	}

	if err := s.states.Claim(ctx, snap, b.owner); err != nil {
		return lookAgain(err) // another assembler took it first
	}
	it := &batchItem{q: q, snap: snap, settle: hold()}
	if !b.add(batchKey(q.ContextNIP, st.Offline), it) {
		b.release([]*batchItem{it}, worker.Snooze(0)) // closing: another assembler takes it
	}
	return nil
}

// fail gives an invoice up with a dead letter saying why, after recording it.
func (b *batcher) fail(ctx context.Context, snap *invoicestate.Snapshot, reason string) error {
	if err := b.s.states.Fail(ctx, snap, reason); err != nil {
		return lookAgain(err)
	}
	return worker.DeadLetter(events.KindDeadline, fmt.Errorf("%s; check it with `ksefctl status` (KSeF may have it if a package with it was closed) before submitting it again", reason))
}

// batchKey is the package a queued invoice goes into: its context's, apart for offline invoices
// (a batch session is opened for offline invoices or for others).
func batchKey(nip string, offline bool) string {
	if offline {
		return nip + "/offline"
	}
	return nip
}

// submittedOf is what invoice.sent needs of the submission: its identity and Visualize.
func submittedOf(q *events.BatchQueued) *events.InvoiceSubmitted {
	return &events.InvoiceSubmitted{Meta: q.Meta, Visualize: q.Visualize}
}

// letGo forgets an item that leaves this assembler's packages, before its message is settled
// (its redelivery must not find it held here).
func (b *batcher) letGo(it *batchItem) {
	b.mu.Lock()
	delete(b.holding, it.snap.Key)
	b.mu.Unlock()
}

func (b *batcher) isHolding(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holding[key]
}

// add puts an invoice into the next package of its batchKey; false when the assembler is closing.
func (b *batcher) add(nip string, it *batchItem) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	p := b.pending[nip]
	if p == nil {
		p = &pendingBatch{full: make(chan struct{})}
		b.pending[nip] = p
		b.sending.Add(1)
		go b.flushLater(nip, p)
	}
	p.items = append(p.items, it)
	p.size += it.state().XML.Size
	b.holding[it.snap.Key] = true
	// The ZIP is never larger than its XMLs and a little per entry; the next invoice may be the
	// largest KSeF takes.
	room := b.cfg.MaxPartSize*int64(b.cfg.MaxParts) - int64(len(p.items))*512 - p.size
	if len(p.items) >= b.cfg.MaxInvoices || room < b.s.cfg.MaxInvoiceSize {
		delete(b.pending, nip)
		close(p.full)
	}
	return true
}

// flushLater sends a package once it is full or has lingered.
func (b *batcher) flushLater(nip string, p *pendingBatch) {
	defer b.sending.Done()
	t := time.NewTimer(b.cfg.Linger)
	defer t.Stop()
	select {
	case <-p.full:
	case <-t.C:
		// Pace the context's packages to its session budget; a full one goes at once.
		b.mu.Lock()
		wait := time.Until(b.flushed[nip].Add(b.cfg.Interval))
		b.mu.Unlock()
		if wait > 0 {
			t.Reset(wait)
			select {
			case <-p.full:
			case <-t.C:
			case <-b.base.Done():
			}
		}
	case <-b.base.Done():
	}
	b.mu.Lock()
	if b.pending[nip] == p {
		delete(b.pending, nip)
	}
	b.flushed[nip] = time.Now()
	items := p.items // no item joins once it is out of pending
	closing := b.closed
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		for _, it := range items {
			delete(b.holding, it.snap.Key)
		}
		b.mu.Unlock()
	}()
	if closing {
		b.release(items, worker.Snooze(0)) // another assembler, or this one restarted, sends them
		return
	}
	// Within the lease of the invoices' claims (the first is the oldest): past it, they may be in
	// another package.
	ctx, cancel := context.WithDeadline(b.base, items[0].state().UpdatedAt.Add(b.cfg.Lease))
	defer cancel()
	b.send(ctx, items)
}

// close stops taking invoices, gives up the packages still gathering, waits for those being sent
// until ctx ends, and then cancels them.
func (b *batcher) close(ctx context.Context) {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.sending.Wait(); close(done) }()
	// Packages still gathering are released; those being sent get until ctx ends.
	for _, p := range b.takePending() {
		close(p.full)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		<-done
	}
	b.cancel()
}

func (b *batcher) takePending() map[string]*pendingBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.pending
	b.pending = map[string]*pendingBatch{}
	return out
}

// release settles items that leave a package that KSeF will never process (not declared, or
// declared and never closed) with err, first taking back their claims (best effort) so that
// their next delivery need not wait for the lease.
func (b *batcher) release(items []*batchItem, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.base), 30*time.Second)
	defer cancel()
	b.each(items, func(it *batchItem) {
		if perr := b.s.states.Unclaim(ctx, it.snap); perr != nil {
			zerolog.Ctx(ctx).Debug().Err(perr).Str("invoice_id", it.q.InvoiceID).Msg("taking back a batch claim failed; its lease will end it")
		}
		b.letGo(it)
		it.settle(err)
	})
}

// each runs f for every item, a few at once (state writes and publishes are round trips).
func (b *batcher) each(items []*batchItem, f func(it *batchItem)) {
	var g errgroup.Group
	g.SetLimit(stateWrites)
	for _, it := range items {
		g.Go(func() error { f(it); return nil })
	}
	g.Wait()
}

// send builds, encrypts, declares, uploads and closes one package, then records and announces
// each of its invoices as sent and settles its queue message. Every item is settled, whatever
// happens. Once the close was asked for, its invoices are never put in another package by this
// assembler: whether KSeF processes the package is for its session's status to say.
func (b *batcher) send(ctx context.Context, items []*batchItem) {
	nip, offline := items[0].q.ContextNIP, items[0].state().Offline
	log := zerolog.Ctx(ctx).With().Str("context_nip", nip).Bool("offline", offline).Logger()
	ctx = log.WithContext(ctx)
	client, err := b.s.clients(ctx, nip)
	if err != nil {
		b.release(items, err)
		return
	}
	dir, err := os.MkdirTemp(b.cfg.TempDir, "ksef-batch-")
	if err != nil {
		b.release(items, fmt.Errorf("batch: temporary directory: %w", err))
		return
	}
	defer os.RemoveAll(dir)

	pkg, items, err := b.buildPackage(ctx, dir, items)
	if err != nil {
		b.release(items, err)
		return
	}
	if len(items) == 0 {
		return
	}
	info, key, err := client.NewEncryption(ctx)
	if err != nil {
		b.release(items, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("batch: encryption key: %w", err)))
		return
	}
	defer key.Zero()
	parts, err := b.encryptParts(dir, pkg, key)
	if err != nil {
		b.release(items, err)
		return
	}
	declared := make([]ksefapi.BatchPartInfo, len(parts))
	for i, p := range parts {
		declared[i] = ksefapi.BatchPartInfo{Ordinal: int32(i + 1), PartSize: p.size, PartHash: p.hash}
	}
	opened, err := client.OpenBatchSession(ctx, ksefapi.KsefSessionOpenBatchRequest{
		InvoiceVersion: ksefapi.V3, EncryptionInfo: info, Offline: offline,
		BatchInfo: ksefapi.BatchInfo{BatchSize: pkg.size, BatchHash: pkg.hash, BatchParts: declared},
	})
	if err != nil {
		// An open whose answer was lost leaves a session nobody closes: KSeF never processes it.
		b.release(items, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("batch: opening the session: %w", err)))
		return
	}
	sessionID := opened.Id
	log = log.With().Str("session_id", sessionID).Logger()
	ctx = log.WithContext(ctx)
	if b.cfg.Open != nil {
		b.cfg.Open.Inc()
		defer b.cfg.Open.Dec()
	}
	// Record the session in every invoice's state before anything is uploaded: a redelivered
	// item then reconciles with this session instead of going into another package.
	if !b.recordSession(ctx, items, sessionID) {
		// Some invoice is no longer ours (its claim outlived): this package must not be sent.
		// The session is left unclosed; KSeF processes nothing of it.
		log.Warn().Msg("an invoice of the package changed hands; the package is given up unsent")
		b.release(items, worker.Snooze(0))
		return
	}
	if err := b.upload(ctx, client, opened, parts); err != nil {
		// Not closed, so never processed: the invoices go into another package at once.
		b.release(items, fmt.Errorf("batch: uploading session %s: %w", sessionID, err))
		return
	}
	closed, err := client.CloseSession(ctx, sessionID)
	if err == nil && !closed {
		err = errors.New("KSeF answered the close with result false")
	}
	if err != nil {
		// The close may have taken effect (an answer lost, a retry refused because the session
		// is closed already): the invoices stay in this session, and their queue items, back
		// shortly, learn from ksefSessionStatus and ksefSessionInvoices whether KSeF has them.
		log.Warn().Err(err).Int("invoices", len(items)).Msg("batch: closing the session failed or its outcome is unknown; reconciling through its status")
		b.settleAll(items, worker.Snooze(b.cfg.ReconcileAfter))
		return
	}
	log.Info().Int("invoices", len(items)).Int64("bytes", pkg.size).Int("parts", len(parts)).Msg("batch package sent")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	b.each(items, func(it *batchItem) { it.settle(b.announce(sctx, it, sessionID)) })
	ev := &events.SessionClosed{SessionID: sessionID, Mode: events.ModeBatch, InvoiceCount: len(items)}
	ev.ContextNIP = nip
	if err := b.s.pub.Publish(sctx, ev, nil); err != nil {
		log.Error().Err(err).Msg("publishing session.closed failed; its UPO will not be fetched")
	}
}

// upload sends the encrypted parts where KSeF asked for them, a few at once.
func (b *batcher) upload(ctx context.Context, client *ksef.Client, opened *ksefapi.KsefSessionOpenBatchResponse, parts []packageFile) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.UploadConcurrency)
	for _, up := range opened.PartUploadRequests {
		idx := int(up.Ordinal) - 1
		if idx < 0 || idx >= len(parts) {
			return fmt.Errorf("batch: KSeF asked for part %d of %d", up.Ordinal, len(parts))
		}
		g.Go(func() error {
			f, err := os.Open(parts[idx].path)
			if err != nil {
				return err
			}
			defer f.Close()
			return client.UploadBatchPart(gctx, up, f, parts[idx].size)
		})
	}
	return g.Wait()
}

// announce records an invoice of a closed package as sent and publishes invoice.sent. When the
// record moved on meanwhile, it is announced only if it says sent in this session too.
func (b *batcher) announce(ctx context.Context, it *batchItem, sessionID string) error {
	err := b.s.states.MarkSent(ctx, it.snap, "")
	if errors.Is(err, invoicestate.ErrChanged) {
		snap, gerr := b.s.states.Get(ctx, it.snap.Key)
		if gerr != nil {
			return gerr
		}
		if snap.State == nil || snap.State.Status != invoicestate.Sent || snap.State.SessionID != sessionID {
			return nil // another path owns it now
		}
		it.snap, err = snap, nil
	}
	if err != nil {
		// The package is closed: the item's redelivery finds the invoice in the session's list.
		return fmt.Errorf("recording the sent state: %w", err)
	}
	return b.s.publishSent(ctx, submittedOf(it.q), it.snap.State)
}

func (b *batcher) settleAll(items []*batchItem, err error) {
	for _, it := range items {
		b.letGo(it)
		it.settle(err)
	}
}

// recordSession moves every invoice from the assembler's claim to "sending in sessionID". When
// one cannot be moved, it reports false (the caller takes the others back).
func (b *batcher) recordSession(ctx context.Context, items []*batchItem, sessionID string) bool {
	var mu sync.Mutex
	lost := false
	b.each(items, func(it *batchItem) {
		if err := b.s.states.StartBatch(ctx, it.snap, sessionID); err != nil {
			mu.Lock()
			lost = true
			mu.Unlock()
		}
	})
	return !lost
}

// verdict is what KSeF says about an invoice of a batch session being reconciled.
type verdict int

const (
	verdictOpen       verdict = iota // the session is not closed: nothing of it processed yet
	verdictProcessing                // closed, the package being processed
	verdictSent                      // KSeF lists the invoice in the session
	verdictNotSent                   // processed (or failed as a whole) without the invoice
)

// inSession says what KSeF did with the invoice of this hash in a batch session, and how many
// invoices the session lists. It asks KSeF once per session for every invoice of the package
// (see sessionFacts).
func (b *batcher) inSession(ctx context.Context, nip, sessionID, hash string) (verdict, int, error) {
	f, err := b.sessions.get(ctx, sessionID, b.s.cfg.Now, func(ctx context.Context) (*sessionFact, error) {
		client, err := b.s.clients(ctx, nip)
		if err != nil {
			return nil, err
		}
		return fetchSessionFact(ctx, client, sessionID)
	})
	if err != nil {
		return 0, 0, err
	}
	if _, ok := f.hashes[hash]; ok {
		return verdictSent, len(f.hashes), nil
	}
	return f.state, len(f.hashes), nil
}

// sessionFact is what KSeF said about a batch session being reconciled.
type sessionFact struct {
	at     time.Time
	hashes map[string]struct{}
	// state is the session's: open, processing, or final (verdictNotSent for an invoice not
	// listed).
	state verdict
}

// final reports whether the fact cannot change any more.
func (f *sessionFact) final() bool { return f.state == verdictNotSent }

// fetchSessionFact asks for the session's status first and then for its list, so that a final
// status comes with the complete list.
func fetchSessionFact(ctx context.Context, client *ksef.Client, sessionID string) (*sessionFact, error) {
	f := &sessionFact{hashes: map[string]struct{}{}}
	info, err := client.SessionStatus(ctx, sessionID)
	if ksef.HasCode(err, ksef.CodeSessionUnknown) {
		f.state = verdictNotSent // the session never existed for KSeF: nothing was sent in it
		return f, nil
	}
	if err != nil {
		return nil, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("batch: reconciling with session %s: %w", sessionID, err))
	}
	switch {
	case info.SessionStatus == ksefapi.Active:
		f.state = verdictOpen
		return f, nil
	case info.Status.Code < 200:
		f.state = verdictProcessing
	default:
		f.state = verdictNotSent
	}
	list, err := client.SessionInvoices(ctx, sessionID)
	if err != nil && !ksef.HasCode(err, ksef.CodeSessionUnknown) {
		return nil, worker.SnoozeOr(ratelimit.Pause, fmt.Errorf("batch: reconciling with session %s: %w", sessionID, err))
	}
	for i := range list {
		if list[i].InvoiceHash != nil {
			f.hashes[*list[i].InvoiceHash] = struct{}{}
		}
	}
	return f, nil
}

// sessionFacts caches sessionFact per session: after a crash thousands of redelivered items ask
// about the same session, and KSeF limits the requests. Facts that can still change are kept
// briefly; final ones longer.
type sessionFacts struct {
	mu    sync.Mutex
	facts map[string]*sessionFact
	busy  map[string]*sync.Mutex
}

func (c *sessionFacts) get(ctx context.Context, sessionID string, now func() time.Time, fetch func(context.Context) (*sessionFact, error)) (*sessionFact, error) {
	c.mu.Lock()
	if c.busy == nil {
		c.facts, c.busy = map[string]*sessionFact{}, map[string]*sync.Mutex{}
	}
	m := c.busy[sessionID]
	if m == nil {
		m = &sync.Mutex{}
		c.busy[sessionID] = m
	}
	c.mu.Unlock()
	m.Lock() // one request per session at a time; the others wait for its answer
	defer m.Unlock()
	c.mu.Lock()
	f := c.facts[sessionID]
	c.mu.Unlock()
	t := now()
	if f != nil && (t.Sub(f.at) < 2*time.Second || (f.final() && t.Sub(f.at) < 10*time.Minute)) {
		return f, nil
	}
	f, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	f.at = t
	c.mu.Lock()
	defer c.mu.Unlock()
	c.facts[sessionID] = f
	for id, old := range c.facts {
		if t.Sub(old.at) > 10*time.Minute {
			delete(c.facts, id)
			delete(c.busy, id)
		}
	}
	return f, nil
}

type packageFile struct {
	path string
	size int64
	hash string
}

// buildPackage writes the invoices from storage into a ZIP file, each exactly the bytes that
// were validated: an invoice whose object is gone, or whose bytes no longer have the hash
// validated (replaced meanwhile), is failed with a dead letter and left out; the others go on.
// It returns the items in the package.
func (b *batcher) buildPackage(ctx context.Context, dir string, items []*batchItem) (packageFile, []*batchItem, error) {
	f, err := os.CreateTemp(dir, "package-*.zip")
	if err != nil {
		return packageFile{}, items, err
	}
	defer f.Close()
	d := kcrypto.NewDigest()
	zw := zip.NewWriter(io.MultiWriter(f, d))
	in := items[:0:0]
	var buf bytes.Buffer // one invoice at a time, at most MaxInvoiceSize
	for _, it := range items {
		st := it.state()
		buf.Reset()
		rc, _, err := b.s.store.Get(ctx, st.XML.Bucket, st.XML.Key)
		if err == nil {
			_, err = buf.ReadFrom(io.LimitReader(rc, b.s.cfg.MaxInvoiceSize+1))
			rc.Close()
		}
		var reason string
		switch {
		case errors.Is(err, storage.ErrNotFound):
			reason = "the stored invoice " + st.XML.Bucket + "/" + st.XML.Key + " is gone"
		case err != nil:
			return packageFile{}, items, fmt.Errorf("batch: reading %s: %w", st.XML.Key, err)
		case hashBase64(buf.Bytes()) != st.InvoiceHash:
			reason = "the stored invoice " + st.XML.Bucket + "/" + st.XML.Key + " changed after it was validated"
		}
		if reason != "" {
			b.s.cfg.Log.Warn().Str("invoice_id", it.q.InvoiceID).Str("context_nip", it.q.ContextNIP).Msg(reason)
			it.settle(b.giveUp(ctx, it, reason))
			continue
		}
		w, err := zw.Create(fmt.Sprintf("%05d.xml", len(in)+1))
		if err == nil {
			_, err = w.Write(buf.Bytes())
		}
		if err != nil {
			return packageFile{}, items, fmt.Errorf("batch: writing the package: %w", err)
		}
		in = append(in, it)
	}
	if err := zw.Close(); err != nil {
		return packageFile{}, in, err
	}
	return packageFile{path: f.Name(), size: d.Size(), hash: d.Sum()}, in, nil
}

// giveUp fails an invoice that cannot be sent as validated and returns its dead letter.
func (b *batcher) giveUp(ctx context.Context, it *batchItem, reason string) error {
	if err := b.s.states.Fail(ctx, it.snap, reason); err != nil {
		return lookAgain(err)
	}
	return worker.Permanent(fmt.Errorf("batch: %s; the invoice was not sent: submit it again", reason))
}

// encryptParts splits the package into at most MaxParts pieces of at most MaxPartSize bytes and
// encrypts each with the session key; the declared size and hash are the encrypted part's.
func (b *batcher) encryptParts(dir string, pkg packageFile, key *kcrypto.SessionKey) ([]packageFile, error) {
	n := (pkg.size + b.cfg.MaxPartSize - 1) / b.cfg.MaxPartSize
	if n > int64(b.cfg.MaxParts) {
		return nil, fmt.Errorf("batch: the package of %d bytes needs %d parts, over %d", pkg.size, n, b.cfg.MaxParts)
	}
	src, err := os.Open(pkg.path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	parts := make([]packageFile, 0, n)
	for i := int64(0); i < n; i++ {
		out, err := os.CreateTemp(dir, fmt.Sprintf("part-%02d-*.enc", i+1))
		if err != nil {
			return nil, err
		}
		d := kcrypto.NewDigest()
		ew, err := kcrypto.EncryptWriter(io.MultiWriter(out, d), key.Key, key.IV)
		if err == nil {
			_, err = io.Copy(ew, io.LimitReader(src, b.cfg.MaxPartSize))
		}
		if err == nil {
			err = ew.Close()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("batch: encrypting part %d: %w", i+1, err)
		}
		parts = append(parts, packageFile{path: out.Name(), size: d.Size(), hash: d.Sum()})
	}
	return parts, nil
}
