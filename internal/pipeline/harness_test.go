package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// options of one end-to-end pipeline.
type options struct {
	// extraTokens adds contexts (nip -> token) to the demo's sellers and buyer.
	extraTokens map[string]string
	// emulator is the emulator's configuration; limits are off unless it sets them.
	emulator emulator.Config
	// settings adjusts the pipeline's settings before it starts.
	settings func(*pipeline.Settings)
	// ksefOptions go to every KSeF client of the first runtime.
	ksefOptions []ksef.Option
}

// pipe is one whole pipeline: an embedded NATS server with JetStream, the KSeF emulator over
// loopback HTTP, a real MinIO (buckets of its own), and the runtime whose workers Run starts.
type pipe struct {
	t      *testing.T
	e      *embedded.Pipeline
	rt     *pipeline.Runtime
	em     *emulator.Emulator
	log    zerolog.Logger
	events *eventLog
}

var bucketSeq atomic.Int32

// start builds a pipeline and starts following its stream; nothing runs until run is called.
func start(t *testing.T, o options) *pipe {
	t.Helper()
	endpoint, ak, sk := testenv.MinIO(t)
	n := bucketSeq.Add(1)
	tokens := ksefconn.Tokens(demo.Tokens())
	maps.Copy(tokens, o.extraTokens)
	s := pipeline.Settings{
		Storage: storage.Config{Backend: "s3", S3: storage.S3Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk},
			Buckets: storage.Buckets{
				Invoices: fmt.Sprintf("e2e%d-invoices", n), UPO: fmt.Sprintf("e2e%d-upo", n),
				QueryParts: fmt.Sprintf("e2e%d-parts", n), Visualizations: fmt.Sprintf("e2e%d-vis", n),
			}},
		KSeF: ksefconn.Settings{Tokens: tokens, Limits: "off", LimitMultiplier: 1, LimitHeadroom: 1,
			MaxLimitWait: 10 * time.Second, RequestTimeout: 30 * time.Second},
		SchemaDir:        testenv.SchemaDir(t),
		AckWait:          10 * time.Second,
		SessionCloseIdle: time.Second, // sessions close soon after the last send, so UPOs come
		// A crashed send is reconciled after the lease; tests cannot wait the production one.
		SendLease:         3 * time.Second,
		VisualizeAccepted: true,
		VisualizeFormat:   events.FormatPDF,
		VisualizeLanguage: events.LangPL,
	}
	if o.settings != nil {
		o.settings(&s)
	}
	emCfg := o.emulator
	if emCfg.ProcessingDelay == 0 {
		emCfg.ProcessingDelay = 50 * time.Millisecond
	}
	if emCfg.StorageDelay == 0 {
		emCfg.StorageDelay = 100 * time.Millisecond
	}
	if emCfg.Limits.Table == nil && emCfg.Limits.Multiplier == 0 {
		emCfg.Limits.Disabled = true
	}
	emCfg.TempDir = t.TempDir()

	w := &testWriter{t: t}
	t.Cleanup(w.stop) // runs last: logging stops after every worker has
	log := zerolog.New(w).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	e, err := embedded.Start(t.Context(), embedded.Options{Dir: t.TempDir(), Settings: s, Emulator: &emCfg,
		Log: log, KSeFOptions: o.ksefOptions})
	if err != nil {
		t.Fatalf("starting the pipeline: %v", err)
	}
	t.Cleanup(e.Close)
	p := &pipe{t: t, e: e, rt: e.Runtime, em: e.Emulator, log: log}
	p.events = follow(t, e.Runtime.Settings.NATS)
	return p
}

// testWriter sends the pipeline's log to the test's log until the test ends.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// run starts workers (all when none are named) on rt and returns a stop that cancels them and
// returns Run's error once every worker has drained.
func (p *pipe) run(rt *pipeline.Runtime, names ...string) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	wait := p.runUntil(ctx, rt, names...)
	return func() error {
		cancel()
		return wait()
	}
}

// runUntil starts workers (all when none are named) on rt until ctx ends; wait returns Run's
// error once every worker has drained. The test's cleanup cancels ctx and waits.
func (p *pipe) runUntil(ctx context.Context, rt *pipeline.Runtime, names ...string) (wait func() error) {
	if len(names) == 0 {
		names = pipeline.Workers()
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx, names...) }()
	var once sync.Once
	var err error
	wait = func() error {
		once.Do(func() {
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				err = fmt.Errorf("workers %v did not drain within a minute of being stopped", names)
			}
		})
		return err
	}
	p.t.Cleanup(func() {
		cancel()
		wait()
	})
	return wait
}

// eventLog is every event of the stream, in stream order, read live by an ordered consumer on a
// connection of its own.
type eventLog struct {
	mu      sync.Mutex
	all     []natsx.Delivered
	changed chan struct{}
	err     error
}

func follow(t *testing.T, cfg natsx.Config) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nc, js, err := natsx.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{changed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := natsx.Follow(ctx, js, cfg, natsx.FollowOptions{Live: true}, func(d natsx.Delivered) error {
			l.mu.Lock()
			l.all = append(l.all, d)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
			return nil
		})
		l.mu.Lock()
		if ctx.Err() == nil {
			l.err = fmt.Errorf("following the stream stopped: %w", err)
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		nc.Close()
	})
	return l
}

func (l *eventLog) snapshot() ([]natsx.Delivered, <-chan struct{}, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all), l.changed, l.err
}

// await waits until done holds for the events seen so far and returns them; after timeout it
// fails the test, saying what it waited for and what it saw.
func (p *pipe) await(timeout time.Duration, what string, done func(evs []natsx.Delivered) bool) []natsx.Delivered {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		evs, changed, err := p.events.snapshot()
		if done(evs) {
			return evs
		}
		if err != nil {
			p.t.Fatalf("waiting for %s: %v\n%s", what, err, summary(evs))
		}
		select {
		case <-changed:
		case <-deadline.C:
			p.t.Fatalf("timed out after %v waiting for %s\n%s", timeout, what, summary(evs))
		}
	}
}

// summary counts events by type and lists the rejections and dead letters, for failure messages.
func summary(evs []natsx.Delivered) string {
	counts := map[string]int{}
	var notes []string
	for _, d := range evs {
		if d.Event == nil {
			counts["undecodable on "+d.Subject]++
			continue
		}
		counts[d.Event.EventType()]++
		switch ev := d.Event.(type) {
		case *events.InvoiceRejected:
			notes = append(notes, fmt.Sprintf("  rejected %s: %d %s %v (stage %s)", ev.InvoiceID, ev.Code, ev.Description, ev.Details, ev.Stage))
		case *events.DeadLettered:
			notes = append(notes, fmt.Sprintf("  dead letter from %s on %s: %s (%s)", ev.Stage, ev.OriginalSubject, ev.Reason, ev.ErrorKind))
		}
	}
	types := slices.Sorted(maps.Keys(counts))
	var b strings.Builder
	b.WriteString("events seen:")
	for _, t := range types {
		fmt.Fprintf(&b, " %s=%d", t, counts[t])
	}
	if len(notes) > 10 {
		notes = append(notes[:10], fmt.Sprintf("  ... and %d more", len(notes)-10))
	}
	for _, n := range notes {
		b.WriteString("\n" + n)
	}
	return b.String()
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

// byInvoice returns the first event of type T per ERP invoice id (consumers deduplicate by
// event_id; the first is the one they keep).
func byInvoice[T events.Event](evs []natsx.Delivered) map[string]T {
	out := map[string]T{}
	for _, ev := range eventsOf[T](evs) {
		id := ev.Common().InvoiceID
		if _, ok := out[id]; !ok {
			out[id] = ev
		}
	}
	return out
}

// distinctIDs counts the distinct event ids of the events of type T for one ERP invoice id.
func distinctIDs[T events.Event](evs []natsx.Delivered, invoiceID string) int {
	ids := map[string]bool{}
	for _, ev := range eventsOf[T](evs) {
		if ev.Common().InvoiceID == invoiceID {
			ids[ev.Common().EventID] = true
		}
	}
	return len(ids)
}

// settled reports whether every invoice id has an outcome (accepted or rejected).
func settled(ids []string) func([]natsx.Delivered) bool {
	return func(evs []natsx.Delivered) bool {
		acc, rej := byInvoice[*events.InvoiceAccepted](evs), byInvoice[*events.InvoiceRejected](evs)
		for _, id := range ids {
			if _, ok := acc[id]; !ok {
				if _, ok := rej[id]; !ok {
					return false
				}
			}
		}
		return true
	}
}

// submission is one invoice the test hands to the pipeline.
type submission struct {
	id, seller string
	req        ksefapi.KsefInvoiceGenerateRequest
	xml        []byte // what was submitted; nil for structured (generate) submissions
	ev         *events.InvoiceSubmitted
}

// Ways to submit an invoice.
const (
	viaInline   = "inline"
	viaObject   = "object"
	viaGenerate = "generate"
)

// newSubmission builds the n-th demo invoice of seller as an invoice.submitted carrying it the
// given way; object submissions are uploaded to the invoices bucket first.
func (p *pipe) newSubmission(id, seller string, n int, via string, issued time.Time) *submission {
	p.t.Helper()
	req := demo.Request(seller, n, issued)
	s := &submission{id: id, seller: seller, req: req, ev: &events.InvoiceSubmitted{Visualize: true}}
	s.ev.InvoiceID, s.ev.ContextNIP = id, seller
	if via == viaGenerate {
		data, err := json.Marshal(req)
		if err != nil {
			p.t.Fatal(err)
		}
		s.ev.Generate = data
		return s
	}
	xml, err := fa3.Generate(fa3wire.Request(req))
	if err != nil {
		p.t.Fatalf("generating invoice %s: %v", id, err)
	}
	s.xml = xml
	p.attach(s, via)
	return s
}

// attach puts s.xml into the event, inline or as a stored object.
func (p *pipe) attach(s *submission, via string) {
	p.t.Helper()
	switch via {
	case viaInline:
		s.ev.InlineXML = s.xml
	case viaObject:
		s.ev.XML = p.putObject(p.rt.Layout.ERPOutbox(s.ev.ContextNIP, s.id+".xml").Key, s.xml)
	default:
		p.t.Fatalf("unknown way %q", via)
	}
}

func (p *pipe) putObject(key string, data []byte) *events.ObjectRef {
	p.t.Helper()
	b := p.rt.Layout.Buckets.Invoices
	info, err := p.rt.Store.Put(p.t.Context(), b, key, bytes.NewReader(data), int64(len(data)), storage.ObjectMeta{ContentType: "application/xml"})
	if err != nil {
		p.t.Fatalf("uploading %s: %v", key, err)
	}
	return &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size}
}

func (p *pipe) publish(ev events.Event) *jetstream.PubAck {
	p.t.Helper()
	ack, err := p.rt.Publisher.PublishAck(p.t.Context(), ev, nil)
	if err != nil {
		p.t.Fatalf("publishing %s: %v", ev.EventType(), err)
	}
	return ack
}

// object reads a stored object whole, failing the test when it cannot.
func (p *pipe) object(ref *events.ObjectRef) ([]byte, storage.ObjectInfo) {
	p.t.Helper()
	if ref == nil {
		p.t.Fatal("no object reference")
	}
	rc, info, err := p.rt.Store.Get(p.t.Context(), ref.Bucket, ref.Key)
	if err != nil {
		p.t.Fatalf("reading %s/%s: %v", ref.Bucket, ref.Key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		p.t.Fatalf("reading %s/%s: %v", ref.Bucket, ref.Key, err)
	}
	return data, info
}

// consumersIdle waits until the named durable consumers have nothing pending or unacknowledged.
func (p *pipe) consumersIdle(timeout time.Duration, names ...string) {
	p.t.Helper()
	ctx := p.t.Context()
	stream := natsx.StreamName(p.rt.Settings.NATS.SubjectPrefix)
	deadline := time.Now().Add(timeout)
	for {
		var busy []string
		for _, name := range names {
			c, err := p.rt.JS.Consumer(ctx, stream, name)
			if err != nil {
				p.t.Fatalf("consumer %s: %v", name, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				p.t.Fatalf("consumer %s: %v", name, err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy = append(busy, fmt.Sprintf("%s (%d pending, %d unacknowledged)", name, info.NumPending, info.NumAckPending))
			}
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("consumers still busy after %v: %v", timeout, busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sentOnce asserts that the emulator processed the invoice exactly once.
func (p *pipe) sentOnce(seller string, xml []byte) {
	p.t.Helper()
	inv, err := fa3.Parse(xml)
	if err != nil {
		p.t.Fatalf("parsing a sent invoice: %v", err)
	}
	if n := p.em.SendCount(seller, inv.InvoiceNumber(), kcrypto.SHA256Base64(xml)); n != 1 {
		p.t.Errorf("invoice %s of %s reached KSeF %d times, want exactly once", inv.InvoiceNumber(), seller, n)
	}
}

// sortedKeys returns a set's members in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sendHook forwards requests to KSeF and calls before just before the n-th invoice send (from
// 1) goes out, and after once KSeF has answered it 200, before the answer reaches the client.
type sendHook struct {
	sends         atomic.Int32
	before, after func(n int32)
}

func (h *sendHook) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/v2/invoices/send" {
		return http.DefaultTransport.RoundTrip(req)
	}
	n := h.sends.Add(1)
	if h.before != nil {
		h.before(n)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK && h.after != nil {
		h.after(n)
	}
	return resp, err
}

// caughtUp waits until the event log has read everything the stream holds now.
func (p *pipe) caughtUp() []natsx.Delivered {
	p.t.Helper()
	stream, err := p.rt.JS.Stream(p.t.Context(), natsx.StreamName(p.rt.Settings.NATS.SubjectPrefix))
	if err != nil {
		p.t.Fatal(err)
	}
	info, err := stream.Info(p.t.Context())
	if err != nil {
		p.t.Fatal(err)
	}
	last := info.State.LastSeq
	return p.await(10*time.Second, fmt.Sprintf("the event log to reach stream sequence %d", last), func(evs []natsx.Delivered) bool {
		return len(evs) > 0 && evs[len(evs)-1].Seq >= last
	})
}

func sortedKeysU[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
