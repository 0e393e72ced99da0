package downloader

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	tokenA   = "token-seller-a"
	tokenB   = "token-buyer-b"
	otherNIP = "9512345678"
	tokenC   = "token-other-c"
)

// env is a KSeF emulator over HTTP, a real MinIO and an embedded NATS with the pipeline's stream.
type env struct {
	t       *testing.T
	em      *emulator.Emulator
	url     string
	store   storage.Store
	layout  storage.Layout
	natsCfg natsx.Config
	js      jetstream.JetStream
	pub     *natsx.Publisher
}

var bucketSeq atomic.Int32

func newEnv(t *testing.T, emCfg emulator.Config) *env {
	t.Helper()
	emCfg.Tokens = map[string]string{tokenA: sellerNIP, tokenB: buyerNIP, tokenC: otherNIP}
	if emCfg.StorageDelay == 0 {
		emCfg.StorageDelay = -1
	}
	if emCfg.ProcessingDelay == 0 {
		emCfg.ProcessingDelay = -1
	}
	emCfg.TempDir = t.TempDir()
	// Request limits are the limiter's business (internal/ratelimit); here they would only
	// slow the sending down.
	emCfg.Limits.Disabled = true
	em, err := emulator.New(emCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em.Handler())
	t.Cleanup(func() {
		srv.Close()
		em.Close()
	})

	endpoint, ak, sk := testenv.MinIO(t)
	st, err := storage.NewS3(storage.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	n := bucketSeq.Add(1)
	layout := storage.Layout{Buckets: storage.Buckets{
		Invoices: fmt.Sprintf("dl%d-invoices", n), QueryParts: fmt.Sprintf("dl%d-parts", n),
		UPO: fmt.Sprintf("dl%d-upo", n), Visualizations: fmt.Sprintf("dl%d-vis", n),
	}}
	if err := st.EnsureBuckets(t.Context(), layout.Buckets.Invoices, layout.Buckets.QueryParts); err != nil {
		t.Fatal(err)
	}

	_, url := testenv.NATS(t)
	natsCfg := natsx.Config{URL: url}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), natsCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := natsx.EnsureStreams(t.Context(), js, natsCfg); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, em: em, url: srv.URL, store: st, layout: layout, natsCfg: natsCfg, js: js, pub: natsx.NewPublisher(js, natsCfg)}
}

func (e *env) client(token string) *ksef.Client {
	e.t.Helper()
	c, err := ksef.New(e.url, ksef.WithToken(token),
		ksef.WithRetryPolicy(ksef.RetryPolicy{MaxAttempts: 6, BaseDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxRetryAfter: 5 * time.Second}))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// sent is an invoice accepted by the emulator.
type sent struct {
	number string // KSeF number
	xml    []byte
}

func ptr[T any](v T) *T { return &v }

// send issues n invoices from seller to buyer in one interactive session and waits until KSeF
// has accepted them all.
func (e *env) send(token, seller, buyer string, n int, tag string) []sent {
	e.t.Helper()
	ctx := e.t.Context()
	c := e.client(token)
	sess, err := c.OpenSession(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	byHash := map[string][]byte{}
	for i := range n {
		xml, err := fa3wire.Generate(ksefapi.KsefInvoiceGenerateRequest{
			InvoiceNumber: fmt.Sprintf("FV/%s/%05d", tag, i),
			IssueDate:     openapi_types.Date{Time: time.Now().UTC().Truncate(24 * time.Hour)},
			Currency:      "PLN",
			Seller:        ksefapi.Party{Nip: ptr(seller), Name: "Sprzedawca " + seller, Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Prosta 1"}},
			Buyer:         ksefapi.Party{Nip: ptr(buyer), Name: "Nabywca " + buyer, Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Krzywa 2"}},
			Lines: []ksefapi.InvoiceLine{
				{Name: fmt.Sprintf("Usługa %d", i), Quantity: "1", UnitNetPrice: fmt.Sprintf("%d.%02d", 10+i, i%100), VatRate: ksefapi.N23},
			},
		})
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := sess.Send(ctx, xml); err != nil {
			e.t.Fatal(err)
		}
		byHash[kcrypto.SHA256Base64(xml)] = xml
	}
	if err := sess.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.em.WaitIdle(ctx); err != nil {
		e.t.Fatal(err)
	}
	infos, err := c.SessionInvoices(ctx, sess.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []sent
	for _, inf := range infos {
		if inf.KsefNumber == nil || inf.InvoiceHash == nil || byHash[*inf.InvoiceHash] == nil {
			e.t.Fatalf("invoice %s not accepted: %+v", inf.Ordinal, inf.Status)
		}
		out = append(out, sent{number: *inf.KsefNumber, xml: byHash[*inf.InvoiceHash]})
	}
	if len(out) != n {
		e.t.Fatalf("%d invoices accepted, want %d", len(out), n)
	}
	return out
}

// downloader returns a Downloader of context B talking to the emulator over HTTP.
func (e *env) downloader(cfg Config, marks CAS) *Downloader {
	e.t.Helper()
	cfg.Layout = e.layout
	cfg.TempDir = e.t.TempDir()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if marks == nil {
		marks = ratelimit.NewMemStore()
	}
	clients := map[string]*ksef.Client{buyerNIP: e.client(tokenB), sellerNIP: e.client(tokenA)}
	d, err := New(cfg, Deps{
		Clients: func(_ context.Context, nip string) (KSeF, error) {
			if c := clients[nip]; c != nil {
				return c, nil
			}
			return nil, fmt.Errorf("no token for %s", nip)
		},
		Store: e.store, Publisher: e.pub, Marks: marks,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// runWorker consumes query.requested with d's handler until the test ends.
func (e *env) runWorker(d *Downloader) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := worker.Run(ctx, e.js, worker.Config{
			Name: WorkerName, Subjects: []string{e.natsCfg.Subjects().QueryRequested()}, NATS: e.natsCfg,
			Concurrency: 2, AckWait: 5 * time.Second, MaxFailures: 4,
			Backoff: func(int) time.Duration { return 50 * time.Millisecond },
		}, d.Handler())
		if err != nil {
			e.t.Errorf("worker: %v", err)
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// streamEvents returns every event in the stream so far, by subject.
func (e *env) streamEvents() map[string][]events.Event {
	e.t.Helper()
	ctx := e.t.Context()
	s, err := e.js.Stream(ctx, natsx.StreamName(e.natsCfg.SubjectPrefix))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]events.Event{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatal(err)
		}
		ev, err := events.Decode(m.Data)
		if err != nil {
			e.t.Fatalf("stream message %d: %v", seq, err)
		}
		out[m.Subject] = append(out[m.Subject], ev)
	}
	return out
}

// waitFor polls the stream until cond holds or 60 s pass.
func (e *env) waitFor(what string, cond func(map[string][]events.Event) bool) map[string][]events.Event {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs := e.streamEvents()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) request(id, subject string, from, to time.Time, incremental bool) *events.QueryRequested {
	e.t.Helper()
	q := request(id, subject, from, to, incremental)
	q.OccurredAt = events.Time{} // the publisher sets it
	return q
}

// checkInvoices verifies the stored invoices and their events against what was sent: every
// invoice stored once under the context, byte for byte, one invoice.downloaded each.
func (e *env) checkInvoices(queryID string, got []events.Event, want []sent) {
	e.t.Helper()
	ctx := e.t.Context()
	byNumber := map[string]*events.InvoiceDownloaded{}
	for _, ev := range got {
		d := ev.(*events.InvoiceDownloaded)
		if d.QueryID != queryID {
			continue
		}
		if byNumber[d.KsefNumber] != nil {
			e.t.Errorf("invoice.downloaded for %s published twice", d.KsefNumber)
		}
		byNumber[d.KsefNumber] = d
	}
	if len(byNumber) != len(want) {
		e.t.Errorf("%d invoices announced by %s, want %d", len(byNumber), queryID, len(want))
	}
	for _, w := range want {
		d := byNumber[w.number]
		if d == nil {
			e.t.Errorf("invoice %s not announced", w.number)
			continue
		}
		loc := e.layout.Downloaded(buyerNIP, w.number)
		if d.XML.Bucket != loc.Bucket || d.XML.Key != loc.Key || d.XML.SHA256 != kcrypto.SHA256Base64(w.xml) {
			e.t.Errorf("%s: reference %+v", w.number, d.XML)
		}
		rc, info, err := e.store.Get(ctx, loc.Bucket, loc.Key)
		if err != nil {
			e.t.Errorf("%s: %v", w.number, err)
			continue
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		if !bytes.Equal(buf.Bytes(), w.xml) || info.SHA256 != d.XML.SHA256 || info.Metadata[storage.MetaKsefNumber] != w.number {
			e.t.Errorf("%s: stored object differs from what was sent (%d bytes, metadata %v)", w.number, buf.Len(), info.Metadata)
		}
	}
	// Nothing else under the context's downloaded prefix.
	n := 0
	for _, err := range e.store.List(ctx, e.layout.Buckets.Invoices, storage.Segment(buyerNIP)+"/downloaded/") {
		if err != nil {
			e.t.Fatal(err)
		}
		n++
	}
	if n != len(want) {
		e.t.Errorf("%d objects stored under the context, want %d", n, len(want))
	}
}

func subjectsOf(s events.Subjects) (downloaded, completed, dlq string) {
	return s.InvoiceDownloaded(), s.QueryCompleted(), s.DeadLetter(s.QueryRequested())
}

func TestWorkerDownloadsFromEmulator(t *testing.T) {
	e := newEnv(t, emulator.Config{QueryMaxPartSize: 8 << 10})
	start := time.Now().UTC().Add(-time.Minute)
	toB := e.send(tokenA, sellerNIP, buyerNIP, 12, "AB")
	e.send(tokenA, sellerNIP, otherNIP, 3, "AC") // to another buyer: not B's
	e.send(tokenB, buyerNIP, sellerNIP, 2, "BA") // issued by B: subject1, not subject2
	e.runWorker(e.downloader(Config{}, nil))

	req := e.request("erp-1", events.SubjectBuyer, start, time.Time{}, false)
	if err := e.pub.Publish(t.Context(), req, nil); err != nil {
		t.Fatal(err)
	}
	downloaded, completed, _ := subjectsOf(e.natsCfg.Subjects())
	evs := e.waitFor("query.completed", func(m map[string][]events.Event) bool { return len(m[completed]) > 0 })
	time.Sleep(200 * time.Millisecond) // a second query.completed would show by now
	evs = e.streamEvents()
	if len(evs[completed]) != 1 {
		t.Fatalf("%d query.completed, want 1", len(evs[completed]))
	}
	done := evs[completed][0].(*events.QueryCompleted)
	if done.InvoiceCount != 12 || done.QueryID != "erp-1" || done.CorrelationID != req.CorrelationID || len(done.Parts) < 2 {
		t.Errorf("query.completed = %+v; want 12 invoices in several parts", done)
	}
	e.checkInvoices("erp-1", evs[downloaded], toB)
	for _, p := range done.Parts {
		info, err := e.store.Stat(t.Context(), p.Bucket, p.Key)
		if err != nil || info.SHA256 != p.SHA256 || info.Size != p.Size {
			t.Errorf("part %s: %v %+v", p.Key, err, info)
		}
	}
}

func TestWorkerContinuesTruncatedResults(t *testing.T) {
	e := newEnv(t, emulator.Config{QueryMaxInvoices: 5, QueryMaxPartSize: 4 << 10})
	start := time.Now().UTC().Add(-time.Minute)
	toB := e.send(tokenA, sellerNIP, buyerNIP, 13, "T")
	e.runWorker(e.downloader(Config{}, nil))
	if err := e.pub.Publish(t.Context(), e.request("erp-t", events.SubjectBuyer, start, time.Time{}, false), nil); err != nil {
		t.Fatal(err)
	}
	downloaded, completed, _ := subjectsOf(e.natsCfg.Subjects())
	evs := e.waitFor("query.completed", func(m map[string][]events.Event) bool { return len(m[completed]) > 0 })
	done := evs[completed][0].(*events.QueryCompleted)
	// 13 invoices, 5 a query: at least 3 queries (more when invoices share a storage date,
	// since each continuation starts at the last one's date, inclusive).
	if done.InvoiceCount != 13 || done.TruncatedContinuations < 2 {
		t.Errorf("query.completed = %d invoices, %d continuations; want 13 and at least 2", done.InvoiceCount, done.TruncatedContinuations)
	}
	e.checkInvoices("erp-t", evs[downloaded], toB)
	if n := e.em.Stats(); n.Queries < 3 {
		t.Errorf("%d KSeF queries, want at least 3", n.Queries)
	}
}

func TestWorkerDeadLettersBadRange(t *testing.T) {
	e := newEnv(t, emulator.Config{})
	e.runWorker(e.downloader(Config{}, nil))
	from := time.Now().UTC().AddDate(0, -5, 0)
	if err := e.pub.Publish(t.Context(), e.request("erp-bad", events.SubjectBuyer, from, from.AddDate(0, 4, 0), false), nil); err != nil {
		t.Fatal(err)
	}
	_, completed, dlq := subjectsOf(e.natsCfg.Subjects())
	evs := e.waitFor("a dead letter", func(m map[string][]events.Event) bool { return len(m[dlq]) > 0 })
	dl := evs[dlq][0].(*events.DeadLettered)
	if dl.ErrorKind != events.KindPermanent || !strings.Contains(dl.Reason, "longer than 3 months") || dl.Stage != WorkerName {
		t.Errorf("dead letter = kind %s, stage %s, reason %q", dl.ErrorKind, dl.Stage, dl.Reason)
	}
	if len(evs[completed]) != 0 {
		t.Error("query.completed published for a rejected query")
	}
	if n := e.em.Stats(); n.Queries != 0 {
		t.Errorf("%d KSeF queries started for a rejected request", n.Queries)
	}
}

func TestWorkerSurvivesEmulatorFaults(t *testing.T) {
	e := newEnv(t, emulator.Config{
		QueryMaxPartSize: 4 << 10,
		Seed:             7,
		Faults: emulator.Faults{
			TooManyRate: 0.3, ServerErrorRate: 0.3, RetryAfter: time.Second,
			Ops: []ksef.Operation{ksef.OpInvoiceQueryStart, ksef.OpInvoiceQueryStatus, ksef.OpInvoiceQueryResult, ksef.OpPublicKey},
		},
	})
	start := time.Now().UTC().Add(-time.Minute)
	toB := e.send(tokenA, sellerNIP, buyerNIP, 10, "F")
	e.runWorker(e.downloader(Config{}, nil))
	if err := e.pub.Publish(t.Context(), e.request("erp-f", events.SubjectBuyer, start, time.Time{}, false), nil); err != nil {
		t.Fatal(err)
	}
	downloaded, completed, dlq := subjectsOf(e.natsCfg.Subjects())
	evs := e.waitFor("query.completed", func(m map[string][]events.Event) bool { return len(m[completed]) > 0 || len(m[dlq]) > 0 })
	if len(evs[dlq]) > 0 {
		t.Fatalf("dead-lettered: %s", evs[dlq][0].(*events.DeadLettered).Reason)
	}
	e.checkInvoices("erp-f", evs[downloaded], toB)
	if s := e.em.Stats(); s.Faults["429"] == 0 || s.Faults["5xx"] == 0 {
		t.Errorf("faults injected: %v; the test needs both 429s and 5xx", s.Faults)
	}
}

func TestIncrementalAgainstEmulator(t *testing.T) {
	e := newEnv(t, emulator.Config{QueryMaxPartSize: 4 << 10})
	marks := ratelimit.NewMemStore()
	// No overlap: the emulator's storage dates are final at once.
	d := e.downloader(Config{Overlap: -1}, marks)
	first := e.send(tokenA, sellerNIP, buyerNIP, 4, "I1")
	start := time.Now().UTC().Add(-time.Hour)

	done, err := d.Download(t.Context(), e.request("inc-1", events.SubjectBuyer, start, time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.InvoiceCount != 4 || done.HighWaterMark.IsZero() {
		t.Fatalf("first incremental query: %+v", done)
	}
	second := e.send(tokenA, sellerNIP, buyerNIP, 3, "I2")
	done2, err := d.Download(t.Context(), e.request("inc-2", events.SubjectBuyer, start, time.Time{}, true), nil)
	if err != nil {
		t.Fatal(err)
	}
	if done2.InvoiceCount != 3 || !done2.HighWaterMark.After(done.HighWaterMark.Time) {
		t.Errorf("second incremental query: %d invoices, mark %s after %s; want only the 3 new ones", done2.InvoiceCount, done2.HighWaterMark, done.HighWaterMark)
	}
	downloaded, _, _ := subjectsOf(e.natsCfg.Subjects())
	evs := e.streamEvents()[downloaded]
	e.checkInvoicesOf("inc-1", evs, first)
	e.checkInvoicesOf("inc-2", evs, second)
}

// checkInvoicesOf checks only the events of one query (several queries share the bucket).
func (e *env) checkInvoicesOf(queryID string, got []events.Event, want []sent) {
	e.t.Helper()
	var numbers []string
	for _, ev := range got {
		if d := ev.(*events.InvoiceDownloaded); d.QueryID == queryID {
			numbers = append(numbers, d.KsefNumber)
		}
	}
	var wantNumbers []string
	for _, w := range want {
		wantNumbers = append(wantNumbers, w.number)
	}
	slices.Sort(numbers)
	slices.Sort(wantNumbers)
	if !slices.Equal(numbers, wantNumbers) {
		e.t.Errorf("%s announced %v, want %v", queryID, numbers, wantNumbers)
	}
}
