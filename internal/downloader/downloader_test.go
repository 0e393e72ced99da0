package downloader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

const (
	sellerNIP = "5265877635"
	buyerNIP  = "7010002137"
)

type harness struct {
	t     *testing.T
	d     *Downloader
	fake  *fakeKSeF
	pub   *recorder
	marks *ratelimit.MemStore
	clock time.Time
}

func newHarness(t *testing.T, fake *fakeKSeF, cfg Config) (*harness, *Downloader) {
	t.Helper()
	h := &harness{t: t, fake: fake, pub: &recorder{}, marks: ratelimit.NewMemStore(), clock: day.Add(30 * 24 * time.Hour)}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	if cfg.PollMaxInterval == 0 {
		cfg.PollMaxInterval = 4 * time.Millisecond
	}
	if cfg.PollBudget == 0 {
		cfg.PollBudget = 5 * time.Second
	}
	cfg.TempDir = t.TempDir()
	st := localStore(t)
	d, err := New(cfg, Deps{
		Clients: func(_ context.Context, nip string) (KSeF, error) {
			if nip != buyerNIP && nip != sellerNIP {
				return nil, fmt.Errorf("%w %s", ksefconn.ErrUnknownContext, nip)
			}
			return fake, nil
		},
		Store:     st,
		Publisher: h.pub,
		Marks:     h.marks,
		Now:       func() time.Time { return h.clock },
	})
	if err != nil {
		t.Fatal(err)
	}
	d.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	h.d = d
	t.Cleanup(func() {
		if n := tempEntries(t, cfg.TempDir); n != 0 {
			t.Errorf("%d temporary files left behind", n)
		}
	})
	return h, d
}

// firstDelivery runs the first delivery of query t1 (the buyer's invoices of day) against a
// fake KSeF of invs, four to a part, that setup adjusts.
func firstDelivery(t *testing.T, invs []testInvoice, setup func(*fakeKSeF)) (*harness, *Downloader, *events.QueryRequested, error) {
	t.Helper()
	fake := newFake(t, invs, 4)
	setup(fake)
	h, d := newHarness(t, fake, Config{})
	req := request("t1", events.SubjectBuyer, day, day.Add(24*time.Hour), false)
	_, err := d.Download(t.Context(), req, nil)
	return h, d, req, err
}

func request(id, subject string, from, to time.Time, incremental bool) *events.QueryRequested {
	q := &events.QueryRequested{
		Meta:        events.Meta{ContextNIP: buyerNIP, CorrelationID: "corr-" + id},
		QueryID:     id,
		SubjectType: subject,
		From:        events.At(from),
		Incremental: incremental,
	}
	if !to.IsZero() {
		q.To = events.At(to)
	}
	// As a worker receives it: encoded and decoded, with its event id. Requests events
	// itself refuses are passed on as they are, to test the downloader's own checks.
	data, err := events.Encode(q)
	if err != nil {
		q.EventID = events.MsgID(q)
		return q
	}
	ev, err := events.Decode(data)
	if err != nil {
		panic(err)
	}
	return ev.(*events.QueryRequested)
}

// checkDownloaded verifies that exactly want were stored and announced once, byte for byte.
func (h *harness) checkDownloaded(queryID string, want []testInvoice) {
	h.t.Helper()
	got := h.pub.downloaded()
	if len(got) != len(want) {
		h.t.Errorf("%d invoices announced, want %d", len(got), len(want))
	}
	st := h.d.store
	for _, inv := range want {
		ev := got[inv.number]
		if ev == nil {
			h.t.Errorf("invoice %s not announced", inv.number)
			continue
		}
		if ev.QueryID != queryID || ev.ContextNIP != buyerNIP || ev.SubjectType != events.SubjectBuyer ||
			!ev.PermanentStorageDate.Equal(inv.psd) || ev.CorrelationID != "corr-"+queryID {
			h.t.Errorf("invoice.downloaded %s = %+v", inv.number, ev)
		}
		b, info := readObject(h.t, st, ev.XML)
		if !bytes.Equal(b, inv.xml) {
			h.t.Errorf("stored %s = %q, want %q", inv.number, b, inv.xml)
		}
		sum := kcrypto.SHA256Base64(inv.xml)
		if ev.XML.SHA256 != sum || info.SHA256 != sum || ev.XML.Size != int64(len(inv.xml)) {
			h.t.Errorf("%s: ref digest %s / stored %s, want %s", inv.number, ev.XML.SHA256, info.SHA256, sum)
		}
		if info.ContentType != "application/xml" || info.Metadata["ksef-number"] != inv.number {
			h.t.Errorf("%s stored as %q with metadata %v", inv.number, info.ContentType, info.Metadata)
		}
	}
}

func TestDownloadAllParts(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 30, day)
	fake := newFake(t, invs, 7)
	fake.notReady = 3
	h, d := newHarness(t, fake, Config{})
	req := request("q1", events.SubjectBuyer, day, day.Add(24*time.Hour), false)

	done, err := d.Download(t.Context(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.checkDownloaded("q1", invs)
	if done.InvoiceCount != 30 || len(done.Parts) != 5 || done.TruncatedContinuations != 0 {
		t.Errorf("completed = %d invoices, %d parts, %d continuations; want 30, 5, 0", done.InvoiceCount, len(done.Parts), done.TruncatedContinuations)
	}
	var total int64
	for _, p := range done.Parts {
		b, info := readObject(t, d.store, &p)
		if kcrypto.SHA256Base64(b) != p.SHA256 || info.SHA256 != p.SHA256 || int64(len(b)) != p.Size {
			t.Errorf("part %s: stored digest/size do not match the reference", p.Key)
		}
		total += p.Size
	}
	if total != fake.queries["Q001"].status.PackageSize {
		t.Errorf("stored parts total %d bytes, package %d", total, fake.queries["Q001"].status.PackageSize)
	}
	if !done.HighWaterMark.Equal(day.Add(24 * time.Hour)) {
		t.Errorf("high-water mark %s, want the range end", done.HighWaterMark)
	}
	if c := h.pub.completed(); len(c) != 1 || c[0].QueryID != "q1" {
		t.Errorf("query.completed published %d times", len(c))
	}
	if len(fake.starts) != 1 || fake.starts[0].SubjectType != "subject2" ||
		!fake.starts[0].Range.From.Equal(day) || !fake.starts[0].Range.To.Equal(day.Add(24*time.Hour)) {
		t.Errorf("KSeF queries started: %+v", fake.starts)
	}
}

func TestDownloadTruncatedContinues(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 25, day)
	fake := newFake(t, invs, 4)
	fake.cap = 10
	h, d := newHarness(t, fake, Config{})
	done, err := d.Download(t.Context(), request("q2", events.SubjectBuyer, day, day.Add(24*time.Hour), false), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.checkDownloaded("q2", invs)
	// 0-9, then 9-18 (from the last date, inclusive), then 18-24.
	if done.InvoiceCount != 25 || done.TruncatedContinuations != 2 || len(fake.starts) != 3 {
		t.Errorf("%d invoices, %d continuations, %d KSeF queries; want 25, 2, 3", done.InvoiceCount, done.TruncatedContinuations, len(fake.starts))
	}
	if !fake.starts[1].Range.From.Equal(invs[9].psd) || !fake.starts[2].Range.From.Equal(invs[18].psd) {
		t.Errorf("continuations start at %s and %s", fake.starts[1].Range.From, fake.starts[2].Range.From)
	}
	if n := h.pub.count(events.TypeInvoiceDownloaded); n != 25 {
		t.Errorf("%d invoice.downloaded published, want 25 (overlap deduplicated)", n)
	}
	keys := map[string]bool{}
	for _, p := range done.Parts {
		keys[p.Key] = true
	}
	if len(keys) != len(done.Parts) || len(done.Parts) != 3+3+2 {
		t.Errorf("%d parts with %d distinct keys, want 8", len(done.Parts), len(keys))
	}
}

func TestDownloadRejectsBadRequests(t *testing.T) {
	fake := newFake(t, nil, 5)
	h, d := newHarness(t, fake, Config{})
	tests := []struct {
		name string
		req  *events.QueryRequested
		want string
	}{
		{"from after to", request("b1", events.SubjectBuyer, day.Add(time.Hour), day, false), "not before to"},
		{"empty range", request("b2", events.SubjectBuyer, day, day, false), "not before to"},
		{"longer than three months", request("b3", events.SubjectBuyer, day, day.AddDate(0, 3, 1), false), "longer than 3 months"},
		{"from in the future", request("b4", events.SubjectBuyer, h.clock.Add(time.Hour), time.Time{}, false), "not in the past"},
		{"unknown subject", func() *events.QueryRequested {
			r := request("b5", events.SubjectBuyer, day, day.Add(time.Hour), false)
			r.SubjectType = "subject9"
			return r
		}(), "unknown subject_type"},
		{"unknown context", func() *events.QueryRequested {
			r := request("b6", events.SubjectBuyer, day, day.Add(time.Hour), false)
			r.ContextNIP = "1234567890"
			return r
		}(), "no KSeF token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Download(t.Context(), tt.req, nil)
			var re *RequestError
			if !errors.As(err, &re) || !strings.Contains(re.Reason, tt.want) {
				t.Fatalf("error %v, want a RequestError about %q", err, tt.want)
			}
		})
	}
	if len(fake.starts) != 0 {
		t.Errorf("%d KSeF queries started for invalid requests", len(fake.starts))
	}
	if n := len(h.pub.all); n != 0 {
		t.Errorf("%d events published for invalid requests", n)
	}
	// KSeF itself refusing the criteria is permanent too.
	fake.startErr = &ksef.Error{Operation: ksef.OpInvoiceQueryStart, HTTPStatus: 400, Code: ksef.CodeQueryParams, Description: "bad range"}
	_, err := d.Download(t.Context(), request("b7", events.SubjectBuyer, day, day.Add(time.Hour), false), nil)
	var re *RequestError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "bad range") {
		t.Errorf("KSeF 1301: error %v, want a RequestError", err)
	}
}

func TestDownloadSnoozesAndResumes(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 12, day)
	fake := newFake(t, invs, 5)
	fake.notReady = 4
	// Each delivery polls for 1 ms only: the first gives up after one poll.
	h, d := newHarness(t, fake, Config{PollInterval: 10 * time.Millisecond, PollMaxInterval: 20 * time.Millisecond, PollBudget: time.Millisecond})
	req := request("q3", events.SubjectBuyer, day, day.Add(24*time.Hour), false)
	var snoozes int
	var done *events.QueryCompleted
	for attempt := 0; attempt < 10 && done == nil; attempt++ {
		var err error
		done, err = d.Download(t.Context(), req, nil)
		var se *SnoozeError
		switch {
		case errors.As(err, &se):
			snoozes++
			if se.After < 10*time.Millisecond || se.After > 20*time.Millisecond {
				t.Errorf("snooze for %s, want between the poll interval and its maximum", se.After)
			}
		case err != nil:
			t.Fatal(err)
		}
	}
	if done == nil || snoozes != 4 {
		t.Fatalf("completed=%v after %d snoozes, want completion after 4", done != nil, snoozes)
	}
	if len(fake.starts) != 1 {
		t.Errorf("%d KSeF queries started, want 1: the snoozed query must be resumed with its key", len(fake.starts))
	}
	h.checkDownloaded("q3", invs)
	// A redelivery after completion publishes the same query.completed again.
	again, err := d.Download(t.Context(), req, nil)
	if err != nil || again.InvoiceCount != 12 || len(fake.starts) != 1 {
		t.Errorf("redelivery: %v, %+v, %d starts", err, again, len(fake.starts))
	}
	if c := h.pub.completed(); len(c) != 2 || c[0].EventID != c[1].EventID {
		t.Errorf("query.completed published %d times with ids %v", len(c), c)
	}
}

func TestDownloadRestartsAfterLostState(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 9, day)
	fake := newFake(t, invs, 3)
	h, d := newHarness(t, fake, Config{})
	req := request("q4", events.SubjectBuyer, day, day.Add(24*time.Hour), false)

	// The first delivery fails while announcing: some invoices are stored and announced.
	failing := &failAfter{inner: h.pub}
	failing.n.Store(5)
	d.pub = failing
	if _, err := d.Download(t.Context(), req, nil); !errors.Is(err, errBoom) {
		t.Fatalf("first delivery: %v, want the publish failure", err)
	}
	calls := len(fake.starts)
	// The process restarts: the query state (and key) is gone.
	d2, err := New(d.cfg, Deps{Clients: d.clients, Store: d.store, Publisher: h.pub, Marks: h.marks, Now: d.now})
	if err != nil {
		t.Fatal(err)
	}
	done, err := d2.Download(t.Context(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.starts) != calls+1 {
		t.Errorf("%d KSeF queries after the restart, want a new one", len(fake.starts)-calls)
	}
	h.checkDownloaded("q4", invs)
	if done.InvoiceCount != 9 || len(done.Parts) != 3 {
		t.Errorf("completed: %d invoices %d parts", done.InvoiceCount, len(done.Parts))
	}
}

// failAfter fails every publish after the first n.
type failAfter struct {
	inner Publisher
	n     atomic.Int64
}

func (f *failAfter) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	if f.n.Add(-1) < 0 {
		return errBoom
	}
	return f.inner.Publish(ctx, ev, hdr)
}

func TestIncremental(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 10, day)
	fake := newFake(t, invs, 4)
	h, d := newHarness(t, fake, Config{Overlap: 10 * time.Minute})
	t0 := h.clock
	// One invoice stored just before the first query, inside the overlap it leaves open.
	late := makeInvoices(t, sellerNIP, 13, t0.Add(-5*time.Minute))[10:]
	for i := range late {
		late[i].psd = t0.Add(-5*time.Minute + time.Duration(i)*time.Second)
	}
	fake.add(late[0])

	done, err := d.Download(t.Context(), request("i1", events.SubjectBuyer, day.Add(-time.Hour), time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.InvoiceCount != 11 || !done.HighWaterMark.Equal(t0.Add(-10*time.Minute)) {
		t.Fatalf("first window: %d invoices, mark %s; want 11 and start minus overlap", done.InvoiceCount, done.HighWaterMark)
	}
	if !fake.starts[0].Range.From.Equal(day.Add(-time.Hour)) || !fake.starts[0].Range.To.Equal(t0) {
		t.Errorf("first window %s..%s, want from..now", fake.starts[0].Range.From, fake.starts[0].Range.To)
	}

	// Two more arrive; the next window starts at the mark and re-reads late[0], which it skips.
	fake.add(late[1], late[2])
	h.clock = t0.Add(2 * time.Hour)
	done, err = d.Download(t.Context(), request("i2", events.SubjectBuyer, day.Add(-time.Hour), time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !fake.starts[1].Range.From.Equal(t0.Add(-10 * time.Minute)) {
		t.Errorf("second window starts at %s, want the mark", fake.starts[1].Range.From)
	}
	if done.InvoiceCount != 2 {
		t.Errorf("second window announced %d invoices, want the 2 new ones", done.InvoiceCount)
	}
	got := h.pub.downloaded()
	if got[late[0].number].QueryID != "i1" || got[late[1].number].QueryID != "i2" || got[late[2].number].QueryID != "i2" {
		t.Errorf("late invoices announced by %s, %s, %s; want i1, i2, i2",
			got[late[0].number].QueryID, got[late[1].number].QueryID, got[late[2].number].QueryID)
	}
	if n := h.pub.count(events.TypeInvoiceDownloaded); n != 13 {
		t.Errorf("%d invoice.downloaded in all, want 13", n)
	}

	// i2 is delivered again to a fresh process: the mark says it is done.
	d2, err := New(d.cfg, Deps{Clients: d.clients, Store: d.store, Publisher: h.pub, Marks: h.marks, Now: d.now})
	if err != nil {
		t.Fatal(err)
	}
	again, err := d2.Download(t.Context(), request("i2", events.SubjectBuyer, day.Add(-time.Hour), time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.starts) != 2 || again.InvoiceCount != 2 || again.EventID != done.EventID || !again.HighWaterMark.Equal(done.HighWaterMark.Time) {
		t.Errorf("redelivered i2: %d KSeF queries, %+v", len(fake.starts), again)
	}
}

func TestIncrementalLongGapInWindows(t *testing.T) {
	fake := newFake(t, makeInvoices(t, sellerNIP, 3, day), 4)
	h, d := newHarness(t, fake, Config{})
	from := h.clock.AddDate(0, -7, 0)
	done, err := d.Download(t.Context(), request("i3", events.SubjectBuyer, from, time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.starts) != 3 {
		t.Fatalf("%d KSeF queries for 7 months, want 3", len(fake.starts))
	}
	for i, s := range fake.starts {
		if s.Range.To.After(s.Range.From.AddDate(0, MaxRangeMonths, 0)) {
			t.Errorf("window %d %s..%s is longer than %d months", i, s.Range.From, s.Range.To, MaxRangeMonths)
		}
		if i > 0 && !s.Range.From.Equal(fake.starts[i-1].Range.To) {
			t.Errorf("window %d does not start where %d ended", i, i-1)
		}
	}
	if !fake.starts[2].Range.To.Equal(h.clock) || done.InvoiceCount != 3 || done.TruncatedContinuations != 0 {
		t.Errorf("last window ends %s; %d invoices, %d continuations", fake.starts[2].Range.To, done.InvoiceCount, done.TruncatedContinuations)
	}
}

func TestIncrementalMarkMoved(t *testing.T) {
	fake := newFake(t, makeInvoices(t, sellerNIP, 3, day), 4)
	h, d := newHarness(t, fake, Config{})
	// Another replica moves the mark while this query runs (between start and finish).
	d.pub = publishHook{inner: h.pub, before: func() {
		_, rev, _ := h.marks.Get(t.Context(), markKey(buyerNIP, events.SubjectBuyer))
		h.marks.Swap(t.Context(), markKey(buyerNIP, events.SubjectBuyer), []byte(`{"hwm":"2026-03-13T00:00:00Z"}`), rev)
	}, once: new(sync.Once)}
	req := request("i4", events.SubjectBuyer, day.Add(-time.Hour), time.Time{}, true)
	if _, err := d.Download(t.Context(), req, nil); !errors.Is(err, ErrMarkMoved) {
		t.Fatalf("error %v, want ErrMarkMoved", err)
	}
	if c := h.pub.completed(); len(c) != 0 {
		t.Fatal("query.completed published although the mark was not moved")
	}
	if _, err := d.Download(t.Context(), req, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if c := h.pub.completed(); len(c) != 1 {
		t.Errorf("query.completed published %d times", len(c))
	}
}

// publishHook runs before once, before the first publish.
type publishHook struct {
	inner  Publisher
	before func()
	once   *sync.Once
}

func (p publishHook) Publish(ctx context.Context, ev events.Event, hdr nats.Header) error {
	p.once.Do(p.before)
	return p.inner.Publish(ctx, ev, hdr)
}

func TestDownloadKSeFTrouble(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 6, day)
	tests := []struct {
		name  string
		setup func(f *fakeKSeF)
		// first delivery's outcome
		snooze   time.Duration // > 0: want a snooze of at least this
		wantErr  bool
		restarts bool // the second delivery must start a new KSeF query
		resumes  bool // the second delivery must go on with the same KSeF query
	}{
		{
			name: "429 with a long Retry-After on start",
			setup: func(f *fakeKSeF) {
				f.startErr = &ksef.Error{Operation: ksef.OpInvoiceQueryStart, HTTPStatus: 429, Code: ksef.CodeTooManyRequests, RetryAfter: 40 * time.Minute}
			},
			snooze: 40 * time.Minute,
		},
		{
			name: "request limit asks for a long wait",
			setup: func(f *fakeKSeF) {
				f.startErr = fmt.Errorf("ksef: waiting: %w", &ratelimit.WaitError{Op: ksef.OpInvoiceQueryStart, Wait: 20 * time.Minute})
			},
			snooze: 20 * time.Minute,
		},
		{
			name: "query unknown to KSeF (expired)",
			setup: func(f *fakeKSeF) {
				f.statusErr = &ksef.Error{Operation: ksef.OpInvoiceQueryStatus, HTTPStatus: 404, Code: ksef.CodeQueryStatus}
			},
			wantErr:  true,
			restarts: true,
		},
		{
			name:     "package size differs from the parts",
			setup:    func(f *fakeKSeF) { f.sizeSkew = 16 },
			wantErr:  true,
			restarts: true,
		},
		{
			name:     "a part that does not decrypt, twice",
			setup:    func(f *fakeKSeF) { f.corrupt = 2 },
			wantErr:  true,
			restarts: true, // after the second failure
		},
		{
			name:    "a part that does not decrypt once (retried with the same query)",
			setup:   func(f *fakeKSeF) { f.corrupt = 1 },
			wantErr: true,
			resumes: true,
		},
		{
			name: "KSeF down (5xx after the client's retries)",
			setup: func(f *fakeKSeF) {
				f.startErr = &ksef.Error{Operation: ksef.OpInvoiceQueryStart, HTTPStatus: 502, Body: "<html>"}
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, d, req, err := firstDelivery(t, invs, tt.setup)
			fake := h.fake
			var se *SnoozeError
			var re *RequestError
			switch {
			case tt.snooze > 0:
				if !errors.As(err, &se) || se.After < tt.snooze {
					t.Fatalf("error %v, want a snooze of %s", err, tt.snooze)
				}
			case tt.wantErr:
				if err == nil || errors.As(err, &se) || errors.As(err, &re) {
					t.Fatalf("error %v, want a retryable error", err)
				}
			}
			starts := len(fake.starts)
			fake.sizeSkew = 0
			if fake.corrupt > 0 {
				// The second delivery fails as well, and gives up on the query's key.
				if _, err := d.Download(t.Context(), req, nil); !errors.Is(err, errBadPackage) {
					t.Fatalf("second delivery: %v, want a bad package", err)
				}
			}
			if _, err := d.Download(t.Context(), req, nil); err != nil {
				t.Fatalf("next delivery: %v", err)
			}
			if tt.restarts && len(fake.starts) != starts+1 {
				t.Errorf("second delivery started %d KSeF queries, want 1", len(fake.starts)-starts)
			}
			if tt.resumes && len(fake.starts) != starts {
				t.Errorf("second delivery started %d KSeF queries, want to resume the first", len(fake.starts)-starts)
			}
			h.checkDownloaded("t1", invs)
			if c := h.pub.completed(); len(c) != 1 || c[0].InvoiceCount != 6 {
				t.Errorf("query.completed: %+v", c)
			}
		})
	}
}

func TestDownloadWithoutToEndsWhenRequested(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 3, day)
	fake := newFake(t, invs, 5)
	h, d := newHarness(t, fake, Config{})
	req := request("o1", events.SubjectBuyer, day, time.Time{}, false)
	req.OccurredAt = events.At(day.AddDate(0, 2, 0))
	// Delivered late: from..now is past three months, from..occurred_at is not.
	h.clock = day.AddDate(0, 4, 0)
	done, err := d.Download(t.Context(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.starts) != 1 || !fake.starts[0].Range.To.Equal(req.OccurredAt.Time) || done.InvoiceCount != 3 {
		t.Errorf("KSeF queries %+v, %d invoices; want one ending at occurred_at", fake.starts, done.InvoiceCount)
	}
}
