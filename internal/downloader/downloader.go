package downloader

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// KSeF is the part of the KSeF client a query needs; *ksef.Client implements it.
type KSeF interface {
	NewEncryption(ctx context.Context) (ksefapi.EncryptionInfo, *kcrypto.SessionKey, error)
	StartQuery(ctx context.Context, req ksefapi.KsefInvoiceQueryStartRequest) (string, error)
	QueryStatus(ctx context.Context, queryID string) (*ksefapi.KsefInvoiceQueryStatusResponse, error)
	QueryResult(ctx context.Context, queryID, partNumber string) (io.ReadCloser, error)
}

// Publisher publishes events; *natsx.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event, hdr nats.Header) error
}

// Deps are the Downloader's collaborators.
type Deps struct {
	// Clients returns the KSeF client of a context (its token and limiter). An error wrapping
	// ksefconn.ErrUnknownContext dead-letters the query.
	Clients   func(ctx context.Context, nip string) (KSeF, error)
	Store     storage.Store
	Publisher Publisher
	// Marks keeps the incremental high-water marks; nil rejects incremental queries.
	Marks CAS
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// errBadPackage marks a part that did not decrypt, unpack or match its index.
var errBadPackage = errors.New("bad result package")

// SnoozeError asks for the message to come back after After: the query is not ready yet, or a
// request limit says wait. The query's state (its KSeF query and key) stays in memory meanwhile.
type SnoozeError struct {
	After  time.Duration
	Reason string
}

func (e *SnoozeError) Error() string {
	return fmt.Sprintf("downloader: %s; again in %s", e.Reason, e.After.Round(time.Millisecond))
}

// Downloader runs invoice queries: one query.requested in, its invoices stored and announced,
// one query.completed out. It is safe for concurrent use by several handlers.
type Downloader struct {
	cfg     Config
	clients func(ctx context.Context, nip string) (KSeF, error)
	store   storage.Store
	pub     Publisher
	marks   *marks
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error // nil: a timer

	mu     sync.Mutex
	states map[string]*queryState // by event id of the query.requested
}

// New returns a Downloader.
func New(cfg Config, deps Deps) (*Downloader, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Clients == nil || deps.Store == nil || deps.Publisher == nil {
		return nil, errors.New("downloader: Clients, Store and Publisher are required")
	}
	d := &Downloader{
		cfg: cfg, clients: deps.Clients, store: deps.Store, pub: deps.Publisher,
		now: deps.Now, states: map[string]*queryState{},
	}
	if deps.Marks != nil {
		d.marks = &marks{cas: deps.Marks}
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// queryState is what survives between deliveries of one query.requested in this process. The
// AES key of a running KSeF query exists only here: after a restart (or on another replica) the
// query starts again with a new key, which is harmless because every object key and event id is
// deterministic.
type queryState struct {
	busy    bool      // a handler is working on it
	touched time.Time // last use, for expiry

	plan      plan
	mark      Mark   // incremental: the mark read at the start
	markRev   uint64 // and its revision
	skip      map[string]bool
	startedAt time.Time

	cursor        time.Time // start of the next KSeF query
	nextPart      int       // number of the next stored part (from 1)
	active        *activeQuery
	done          map[string]time.Time // KSeF number -> PermanentStorage date, stored and announced
	skipped       map[string]time.Time // overlap with the previous incremental query
	parts         []events.ObjectRef
	continuations int

	completed *events.QueryCompleted // published; a redelivery publishes it again
}

// activeQuery is a KSeF query in progress.
type activeQuery struct {
	id     string
	key    *kcrypto.SessionKey
	win    window
	delay  time.Duration // next status poll delay
	status *ksefapi.KsefInvoiceQueryStatusResponse
	// firstPart is the stored number of the first part; the others follow in status order.
	firstPart int
	parts     map[string]partResult
	bad       int // parts that did not decrypt or unpack
}

type partResult struct {
	ref      events.ObjectRef
	rawSize  int64
	invoices int
}

// dropActive forgets the running KSeF query and its key. Its parts' numbers are reused by the
// next query, overwriting what it stored.
func (s *queryState) dropActive() {
	if a := s.active; a != nil {
		a.key.Zero()
		if a.status != nil {
			s.nextPart = a.firstPart
		}
		s.active = nil
	}
}

// acquire returns the state of the query with event id, creating it, and marks it busy.
func (d *Downloader) acquire(id string) (*queryState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for k, s := range d.states {
		if !s.busy && now.Sub(s.touched) > d.cfg.StateTTL {
			s.dropActive()
			delete(d.states, k)
		}
	}
	s := d.states[id]
	if s == nil {
		s = &queryState{}
		d.states[id] = s
	}
	if s.busy {
		return nil, false
	}
	s.busy, s.touched = true, now
	return s, true
}

func (d *Downloader) release(id string, s *queryState, forget bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s.busy, s.touched = false, d.now()
	if forget {
		s.dropActive()
		delete(d.states, id)
	}
}

// Download runs the query of req to the end: it stores every invoice, publishes one
// invoice.downloaded per invoice and one query.completed, which it returns. progress, when not
// nil, is called now and then during long work (to extend the message's ack deadline).
//
// Errors: a *RequestError when req can never succeed, a *SnoozeError when the query should be
// resumed later, anything else when it may succeed on a retry.
func (d *Downloader) Download(ctx context.Context, req *events.QueryRequested, progress func()) (*events.QueryCompleted, error) {
	if err := validate(req, d.now()); err != nil {
		return nil, err
	}
	if req.Incremental && d.marks == nil {
		return nil, &RequestError{QueryID: req.QueryID, Reason: "incremental queries are not enabled (no high-water mark store)"}
	}
	id := req.EventID
	if id == "" {
		id = events.MsgID(req)
	}
	st, ok := d.acquire(id)
	if !ok {
		return nil, &SnoozeError{After: d.cfg.PollInterval, Reason: "the query is being downloaded by another delivery"}
	}
	forget := false
	defer func() { d.release(id, st, forget) }()

	r := &run{d: d, st: st, req: req, progress: progress, log: zerolog.Ctx(ctx)}
	done, err := r.do(ctx)
	var re *RequestError
	if errors.As(err, &re) || errors.Is(err, ErrMarkMoved) {
		forget = true
	}
	return done, err
}

// run is one delivery's work on a query.
type run struct {
	d        *Downloader
	st       *queryState
	req      *events.QueryRequested
	client   KSeF
	progress func()
	lastBeat time.Time
	log      *zerolog.Logger
}

func (r *run) beat() {
	if r.progress == nil {
		return
	}
	if now := time.Now(); now.Sub(r.lastBeat) >= r.d.cfg.HeartbeatEvery {
		r.lastBeat = now
		r.progress()
	}
}

func (r *run) do(ctx context.Context) (*events.QueryCompleted, error) {
	st, req := r.st, r.req
	if st.completed != nil {
		return st.completed, r.d.publish(ctx, st.completed)
	}
	if st.startedAt.IsZero() {
		if done, err := r.start(ctx); done != nil || err != nil {
			return done, err
		}
	}
	client, err := r.d.clients(ctx, req.ContextNIP)
	if err != nil {
		if errors.Is(err, ksefconn.ErrUnknownContext) {
			return nil, &RequestError{QueryID: req.QueryID, Reason: "no KSeF token configured for context " + req.ContextNIP}
		}
		return nil, err
	}
	r.client = client
	for st.cursor.Before(st.plan.end) {
		if err := r.window(ctx); err != nil {
			return nil, err
		}
	}
	return r.finish(ctx)
}

// start resolves the plan: defaults, and for an incremental query the high-water mark. When the
// mark says this very query already finished (its query.completed may have been lost), it
// returns that query.completed.
func (r *run) start(ctx context.Context) (*events.QueryCompleted, error) {
	st, req := r.st, r.req
	now := r.d.now()
	subject, _ := subjectType(req.SubjectType)
	p := plan{subject: subject, from: req.From.Time, end: endOf(req, now), incremental: req.Incremental}
	if req.Incremental {
		mk, rev, err := r.d.marks.get(ctx, req.ContextNIP, req.SubjectType)
		if err != nil {
			return nil, err
		}
		if mk.Last != nil && mk.Last.QueryID == req.QueryID {
			done := r.completedEvent(*mk.Last)
			st.completed = done
			return done, r.d.publish(ctx, done)
		}
		if !mk.HWM.IsZero() {
			p.from = mk.HWM
		}
		st.mark, st.markRev = mk, rev
		st.skip = make(map[string]bool, len(mk.Recent))
		for _, n := range mk.Recent {
			st.skip[n] = true
		}
	}
	st.plan, st.cursor, st.startedAt, st.nextPart = p, p.from, now, 1
	st.done, st.skipped = map[string]time.Time{}, map[string]time.Time{}
	return nil, nil
}

// window runs one KSeF query: start (unless resumed), wait until ready, fetch every part, check
// the totals, and move the cursor (to the window's end, or to the last PermanentStorage date of
// a truncated result).
func (r *run) window(ctx context.Context) error {
	st := r.st
	if st.active == nil {
		if err := r.startQuery(ctx); err != nil {
			return err
		}
	}
	a := st.active
	if a.status == nil {
		if err := r.poll(ctx, a); err != nil {
			return err
		}
	}
	for i, pn := range a.status.PartNumbers {
		if _, ok := a.parts[pn]; ok {
			continue
		}
		res, err := r.part(ctx, a, pn, a.firstPart+i)
		if err != nil {
			if errors.Is(err, errBadPackage) {
				a.bad++
			}
			// A part that fails to decrypt or unpack twice will not get better with the same
			// key: the next delivery starts a new query.
			if gone(err) || a.bad >= 2 {
				st.dropActive()
			}
			return err
		}
		a.parts[pn] = res
	}
	var size int64
	var count int
	for _, p := range a.parts {
		size += p.rawSize
		count += p.invoices
	}
	if size != a.status.PackageSize || count != int(a.status.NumberOfInvoices) {
		st.dropActive() // start the window again with a new query
		return fmt.Errorf("downloader: KSeF query %s: got %d invoices in %d bytes, status said %d invoices in %d bytes",
			a.id, count, size, a.status.NumberOfInvoices, a.status.PackageSize)
	}
	for _, pn := range a.status.PartNumbers {
		st.parts = append(st.parts, a.parts[pn].ref)
	}
	next := a.win.to
	if a.status.IsTruncated {
		last := a.status.LastPermanentStorageDate
		if last == nil || !last.After(a.win.from) {
			st.dropActive()
			return fmt.Errorf("downloader: KSeF query %s is truncated without a later lastPermanentStorageDate to continue from", a.id)
		}
		next = *last
		st.continuations++
	}
	r.log.Debug().Str("query_id", r.req.QueryID).Str("ksef_query_id", a.id).Int("invoices", count).
		Int("parts", len(a.parts)).Bool("truncated", a.status.IsTruncated).Msg("KSeF query downloaded")
	st.cursor = next
	st.active.key.Zero()
	st.active = nil
	return nil
}

func (r *run) startQuery(ctx context.Context) error {
	st := r.st
	w := st.plan.nextWindow(st.cursor)
	info, key, err := r.client.NewEncryption(ctx)
	if err != nil {
		return r.classify(err)
	}
	id, err := r.client.StartQuery(ctx, ksefapi.KsefInvoiceQueryStartRequest{
		Range:          ksefapi.KsefInvoiceQueryStartRange{From: w.from, To: w.to},
		EncryptionInfo: info,
		SubjectType:    st.plan.subject,
	})
	if err != nil {
		key.Zero()
		return r.classify(err)
	}
	st.active = &activeQuery{id: id, key: key, win: w, delay: r.d.cfg.PollInterval, parts: map[string]partResult{}}
	r.log.Debug().Str("query_id", r.req.QueryID).Str("ksef_query_id", id).
		Time("from", w.from).Time("to", w.to).Msg("KSeF query started")
	return nil
}

// poll asks for the query's status until it is ready, with growing delays, for at most
// PollBudget; then it gives up for now with a *SnoozeError, keeping the query.
func (r *run) poll(ctx context.Context, a *activeQuery) error {
	cfg := r.d.cfg
	deadline := time.Now().Add(cfg.PollBudget)
	for {
		r.beat()
		pctx, cancel := context.WithDeadline(ctx, deadline)
		s, err := r.client.QueryStatus(pctx, a.id)
		cancel()
		if err == nil {
			if len(s.PartNumbers) != len(slices.Compact(slices.Sorted(slices.Values(s.PartNumbers)))) {
				return fmt.Errorf("downloader: KSeF query %s lists a part twice", a.id)
			}
			a.status, a.firstPart = s, r.st.nextPart
			r.st.nextPart += len(s.PartNumbers)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ke *ksef.Error
		var lw *ratelimit.WaitError
		wait := a.delay
		switch {
		case errors.As(err, &lw):
			wait = max(wait, lw.Wait)
		case errors.As(err, &ke) && ke.Temporary():
			// Not ready yet (503, code 1303), or KSeF is struggling: ask again later.
			wait = max(wait, ke.RetryAfter)
		case errors.Is(err, context.DeadlineExceeded):
			// The poll budget ran out inside the client's own retries.
		case errors.As(err, &ke):
			// The query is unknown or expired: start it again.
			r.st.dropActive()
			return fmt.Errorf("downloader: KSeF query %s: %w", a.id, err)
		default:
			return err
		}
		a.delay = min(2*a.delay, cfg.PollMaxInterval)
		if time.Until(deadline) < wait {
			return &SnoozeError{After: wait, Reason: "KSeF query " + a.id + " is not ready"}
		}
		if err := sleepCtx(ctx, wait, r.d.sleep); err != nil {
			return err
		}
	}
}

// classify turns KSeF errors into the worker's outcomes: a request limit is a snooze, rejected
// criteria a permanent failure, the rest a retry.
func (r *run) classify(err error) error {
	if d, ok := ratelimit.Pause(err); ok {
		return &SnoozeError{After: d, Reason: err.Error()}
	}
	if ksef.HasCode(err, ksef.CodeQueryParams) {
		return &RequestError{QueryID: r.req.QueryID, Reason: "KSeF refused the criteria: " + err.Error()}
	}
	return err
}

// gone reports a KSeF answer saying the query or part no longer exists (expired results): the
// window is started again.
func gone(err error) bool {
	var ke *ksef.Error
	return errors.As(err, &ke) && !ke.Temporary() && ke.HTTPStatus != 401 && ke.HTTPStatus != 403
}

// part downloads, stores and unpacks one result part.
func (r *run) part(ctx context.Context, a *activeQuery, pn string, no int) (partResult, error) {
	r.beat()
	body, err := r.client.QueryResult(ctx, a.id, pn)
	if err != nil {
		return partResult{}, r.classify(err)
	}
	defer body.Close()
	req, cfg := r.req, r.d.cfg
	loc := cfg.Layout.QueryPart(req.ContextNIP, req.QueryID, no)
	var info storage.ObjectInfo
	// The status gave the package's size: a part that goes past what is left of it, or past
	// KSeF's largest part, is not read to its end (a 50 MB answer where KSeF said 1 MB).
	left := a.status.PackageSize
	for _, p := range a.parts {
		left -= p.rawSize
	}
	pf, err := fetchPart(ctx, &cappedReader{r: body, left: max(min(left, cfg.MaxPartSize), 0)}, a.key, cfg.TempDir, func(ctx context.Context, src io.Reader) error {
		var err error
		info, err = r.d.store.Put(ctx, loc.Bucket, loc.Key, src, -1, storage.ObjectMeta{
			ContentType: "application/octet-stream",
			Metadata: map[string]string{
				"context-nip": req.ContextNIP, storage.MetaQueryID: req.QueryID,
				"ksef-query-id": a.id, "part-number": pn, "encryption": "aes-256-cbc",
			},
		})
		return err
	})
	if errors.Is(err, kcrypto.ErrPadding) || errors.Is(err, kcrypto.ErrCiphertextLength) || errors.Is(err, errPartTooLarge) {
		err = fmt.Errorf("%w: %w", errBadPackage, err)
	}
	if err != nil {
		return partResult{}, fmt.Errorf("downloader: KSeF query %s part %s: %w", a.id, pn, err)
	}
	defer pf.Close()
	if info.SHA256 != "" && info.SHA256 != pf.rawSHA256 {
		return partResult{}, fmt.Errorf("downloader: KSeF query %s part %s: stored digest differs from the bytes received", a.id, pn)
	}
	invs, err := readArchive(pf.f, pf.size, archiveLimits{maxInvoice: cfg.MaxInvoiceSize})
	if err != nil && !errors.Is(err, errUnsafePackage) {
		err = fmt.Errorf("downloader: KSeF query %s part %s: %w: %w", a.id, pn, errBadPackage, err)
	}
	if err == nil {
		err = r.invoices(ctx, invs)
	}
	if errors.Is(err, errUnsafePackage) {
		// KSeF built it so; a new query gets the same: fail the query with the reason.
		return partResult{}, &RequestError{QueryID: req.QueryID, Reason: fmt.Sprintf("KSeF query %s part %s: %v", a.id, pn, err)}
	}
	if err != nil {
		return partResult{}, err
	}
	ref := events.ObjectRef{Bucket: loc.Bucket, Key: loc.Key, SHA256: pf.rawSHA256, Size: pf.rawSize, ContentType: "application/octet-stream"}
	return partResult{ref: ref, rawSize: pf.rawSize, invoices: len(invs)}, nil
}

// invoices stores and announces the invoices of one part that this query (or, for an
// incremental query, the previous one) has not announced yet, Parallelism at a time.
func (r *run) invoices(ctx context.Context, invs []archived) error {
	st := r.st
	todo := make([]*archived, 0, len(invs))
	claimed := make(map[string]bool, len(invs))
	for i := range invs {
		inv := &invs[i]
		n := inv.meta.KsefNumber
		switch _, done := st.done[n]; {
		case done || claimed[n]:
			// Overlap of a truncated query and its continuation.
		case st.skip[n]:
			st.skipped[n] = inv.meta.PermanentStorageDate
		default:
			claimed[n] = true
			todo = append(todo, inv)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.d.cfg.Parallelism)
	var mu sync.Mutex
	for _, inv := range todo {
		r.beat()
		g.Go(func() error {
			if err := r.invoice(gctx, inv); err != nil {
				return err
			}
			mu.Lock()
			st.done[inv.meta.KsefNumber] = inv.meta.PermanentStorageDate
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// invoice stores one invoice and announces it. Storing again what an earlier delivery stored
// writes the same bytes under the same key; the announcement has the same event id.
func (r *run) invoice(ctx context.Context, inv *archived) error {
	req, cfg := r.req, r.d.cfg
	n, psd := inv.meta.KsefNumber, inv.meta.PermanentStorageDate
	loc := cfg.Layout.Downloaded(req.ContextNIP, n)
	rc, err := inv.file.Open()
	if err != nil {
		return fmt.Errorf("downloader: invoice %s in the package: %w", n, err)
	}
	meta := map[string]string{storage.MetaKsefNumber: n, "context-nip": req.ContextNIP, "subject-type": req.SubjectType}
	if inv.meta.InvoiceNumber != "" {
		meta[storage.MetaInvoiceNumber] = inv.meta.InvoiceNumber
	}
	if !psd.IsZero() {
		meta["permanent-storage-date"] = psd.UTC().Format(time.RFC3339Nano)
	}
	// The size is known, so the store sends the invoice in one request with its digest; the
	// ZIP reader checks the entry's CRC at its end.
	info, err := r.d.store.Put(ctx, loc.Bucket, loc.Key, rc, int64(inv.file.UncompressedSize64),
		storage.ObjectMeta{ContentType: "application/xml", Metadata: meta})
	if err == nil {
		// The store stops at the declared size; reading on makes the ZIP reader check the CRC,
		// and refuse (zip.ErrFormat) an entry that expands past what it declared.
		if extra, rerr := io.ReadAll(io.LimitReader(rc, 1)); rerr != nil {
			err = rerr
		} else if len(extra) > 0 {
			err = zip.ErrFormat
		}
	}
	rc.Close()
	switch {
	case errors.Is(err, zip.ErrFormat):
		// The entry expanded past its declared size: a ZIP bomb that lied about it.
		err = fmt.Errorf("%w: invoice %s expands past its declared %d bytes", errUnsafePackage, n, inv.file.UncompressedSize64)
	case errors.Is(err, zip.ErrChecksum):
		err = fmt.Errorf("%w: %w", errBadPackage, err)
	}
	if err != nil {
		return fmt.Errorf("downloader: storing invoice %s: %w", n, err)
	}
	if want := inv.meta.hash(); want != "" && info.SHA256 != want {
		return fmt.Errorf("%w: invoice %s: its SHA-256 differs from the package index", errBadPackage, n)
	}
	ev := &events.InvoiceDownloaded{
		Meta:        events.Meta{CorrelationID: req.CorrelationID, ContextNIP: req.ContextNIP},
		QueryID:     req.QueryID,
		KsefNumber:  n,
		SubjectType: req.SubjectType,
		XML: &events.ObjectRef{
			Bucket: loc.Bucket, Key: loc.Key, SHA256: info.SHA256, Size: info.Size, ContentType: "application/xml",
		},
	}
	if !psd.IsZero() {
		ev.PermanentStorageDate = events.At(psd)
	}
	return r.d.pub.Publish(ctx, ev, nil)
}

// finish computes the high-water mark, moves the incremental mark and publishes query.completed.
func (r *run) finish(ctx context.Context) (*events.QueryCompleted, error) {
	st, req, cfg := r.st, r.req, r.d.cfg
	// Invoices stored in KSeF up to a little before the query started are all in KSeF by now
	// (the service's own HWM is not exposed by this API): that is as far as the download is
	// known to be complete.
	hwm := minTime(st.plan.end, st.startedAt.Add(-cfg.Overlap))
	if req.Incremental {
		// Never backwards, and never before the range asked for.
		hwm = maxTime(hwm, maxTime(st.mark.HWM, st.plan.from))
	}
	sum := Summary{
		QueryID: req.QueryID, InvoiceCount: len(st.done), Parts: st.parts,
		Continuations: st.continuations,
	}
	if hwm.After(st.plan.from) || (req.Incremental && !hwm.IsZero()) {
		sum.HWM = hwm
	}
	if req.Incremental {
		mk := Mark{HWM: sum.HWM, Last: &sum}
		// The next window starts at the mark and overlaps what was stored since: remember
		// those to skip them.
		for _, set := range []map[string]time.Time{st.done, st.skipped} {
			for n, psd := range set {
				if psd.IsZero() || !psd.Before(hwm) {
					mk.Recent = append(mk.Recent, n)
				}
			}
		}
		if err := r.d.marks.put(ctx, req.ContextNIP, req.SubjectType, mk, st.markRev); err != nil {
			return nil, err
		}
	}
	done := r.completedEvent(sum)
	st.completed = done
	return done, r.d.publish(ctx, done)
}

func (r *run) completedEvent(s Summary) *events.QueryCompleted {
	ev := &events.QueryCompleted{
		Meta:                   events.Meta{CorrelationID: r.req.CorrelationID, ContextNIP: r.req.ContextNIP},
		QueryID:                s.QueryID,
		InvoiceCount:           s.InvoiceCount,
		Parts:                  s.Parts,
		TruncatedContinuations: s.Continuations,
	}
	if ev.Parts == nil {
		ev.Parts = []events.ObjectRef{}
	}
	if !s.HWM.IsZero() {
		ev.HighWaterMark = events.At(s.HWM)
	}
	return ev
}

func (d *Downloader) publish(ctx context.Context, ev *events.QueryCompleted) error {
	return d.pub.Publish(ctx, ev, nil)
}

// sleepCtx waits d or until ctx ends; sleep, when set, replaces the timer (tests).
func sleepCtx(ctx context.Context, d time.Duration, sleep func(context.Context, time.Duration) error) error {
	if sleep != nil {
		return sleep(ctx, d)
	}
	return ksef.Sleep(ctx, d)
}

// errPartTooLarge: a result part is larger than what the query's packageSize leaves for it,
// or than Config.MaxPartSize.
var errPartTooLarge = errors.New("the part is larger than the query's packageSize or the largest part allows")

// cappedReader fails with errPartTooLarge once more than left bytes come.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, errPartTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errPartTooLarge
	}
	return n, err
}
