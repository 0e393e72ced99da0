package worker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

const stream = "KSEF_T"

type env struct {
	t    *testing.T
	js   jetstream.JetStream
	nats natsx.Config
	pub  *natsx.Publisher
	logs *testenv.LogBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, url := testenv.NATS(t)
	cfg := natsx.Config{URL: url, SubjectPrefix: "t"}.WithDefaults()
	nc, js, err := natsx.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := natsx.EnsureStreams(t.Context(), js, cfg); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, js: js, nats: cfg, pub: natsx.NewPublisher(js, cfg), logs: &testenv.LogBuffer{}}
}

// config returns a worker config on invoice.accepted with fast retries.
func (e *env) config(name string) worker.Config {
	return worker.Config{
		Name:        name,
		Subjects:    []string{e.nats.Subjects().InvoiceAccepted()},
		NATS:        e.nats,
		AckWait:     5 * time.Second,
		MaxFailures: 3,
		Backoff:     func(int) time.Duration { return 20 * time.Millisecond },
	}
}

// run starts a worker; the returned stop cancels it and returns Run's error.
func (e *env) run(cfg worker.Config, h worker.Handler, mw ...worker.Middleware) (stop func() error) {
	e.t.Helper()
	log := zerolog.New(e.logs)
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, e.js, cfg, h, mw...) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				e.t.Fatal("worker did not stop")
			}
		})
		return err
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

func accepted(i int) *events.InvoiceAccepted {
	return &events.InvoiceAccepted{
		Meta:            events.Meta{CorrelationID: fmt.Sprintf("corr-%d", i), ContextNIP: "5265877635", InvoiceID: fmt.Sprintf("FV/%d", i)},
		KsefNumber:      "5265877635-20260314-0100001AF629-AF",
		AcquisitionDate: events.At(time.Now()),
		SessionID:       "20260314-SO-1",
		InvoiceHash:     "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		XML:             &events.ObjectRef{Bucket: "ksef-invoices", Key: "a.xml", Size: 3},
	}
}

func (e *env) publish(ev events.Event) {
	e.t.Helper()
	if err := e.pub.Publish(e.t.Context(), ev, nil); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publishRaw(data []byte) {
	e.t.Helper()
	if _, err := e.js.Publish(e.t.Context(), e.nats.Subjects().InvoiceAccepted(), data); err != nil {
		e.t.Fatal(err)
	}
}

// deadLetters waits until the stream holds n dead letters and returns them.
func (e *env) deadLetters(n int) []*events.DeadLettered {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for e.dlqCount() < uint64(n) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d dead letters in 15s, want %d\n%s", e.dlqCount(), n, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := e.js.OrderedConsumer(e.t.Context(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"t.dlq.>"}})
	if err != nil {
		e.t.Fatal(err)
	}
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*events.DeadLettered
	for msg := range batch.Messages() {
		if msg.Subject() != "t.dlq.invoice.accepted" {
			e.t.Fatalf("dead letter on %s", msg.Subject())
		}
		ev, err := events.Decode(msg.Data())
		if err != nil {
			e.t.Fatalf("dead letter does not decode: %v", err)
		}
		out = append(out, ev.(*events.DeadLettered))
	}
	if len(out) != n || e.dlqCount() != uint64(n) {
		e.t.Fatalf("%d dead letters fetched, %d in the stream, want %d\n%s", len(out), e.dlqCount(), n, e.logs.String())
	}
	return out
}

func (e *env) dlqCount() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(e.t.Context(), stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.t.Context(), jetstream.WithSubjectFilter("t.dlq.>"))
	if err != nil {
		e.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// settled waits until the consumer has nothing pending or unacknowledged.
func (e *env) settled(name string) *jetstream.ConsumerInfo {
	e.t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(e.t, func() bool {
		c, err := e.js.Consumer(e.t.Context(), stream, name)
		if err != nil {
			return false
		}
		info, err = c.Info(e.t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	return info
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatal("nothing received in 15s")
		panic("unreachable")
	}
}

func TestAck(t *testing.T) {
	e := newEnv(t)
	got := make(chan *worker.Message, 1)
	stop := e.run(e.config("ack"), func(ctx context.Context, m *worker.Message) error {
		worker.Logger(ctx).Info().Msg("handling")
		got <- m
		return nil
	})
	e.publish(accepted(1))
	m := recv(t, got)
	ev, ok := m.Event.(*events.InvoiceAccepted)
	if !ok || ev.InvoiceID != "FV/1" || m.CorrelationID != "corr-1" || m.Deliveries != 1 || m.Seq != 1 {
		t.Fatalf("message %+v", m)
	}
	info := e.settled("ack")
	if info.AckFloor.Stream != 1 || info.Config.MaxDeliver != -1 || info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Fatalf("consumer %+v", info)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"correlation_id":"corr-1"`) || !strings.Contains(logs, `"message":"handling"`) {
		t.Fatalf("handler log lacks correlation id:\n%s", logs)
	}
	if e.dlqCount() != 0 {
		t.Fatal("dead letter on success")
	}
}

func TestSnoozeIsNotAFailure(t *testing.T) {
	e := newEnv(t)
	const snoozes = 5 // more than MaxFailures
	var times []time.Time
	done := make(chan struct{})
	e.run(e.config("snooze"), func(ctx context.Context, m *worker.Message) error {
		times = append(times, time.Now())
		if len(times) <= snoozes {
			return worker.Snooze(100 * time.Millisecond)
		}
		close(done)
		return nil
	})
	e.publish(accepted(1))
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("not done after %d deliveries\n%s", len(times), e.logs.String())
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 100*time.Millisecond {
			t.Fatalf("redelivered after %v, snoozed for 100ms", gap)
		}
	}
	e.settled("snooze")
	if n := e.dlqCount(); n != 0 {
		t.Fatalf("%d dead letters after snoozes", n)
	}
}

func TestRetryThenDeadLetter(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	stop := e.run(e.config("retry"), func(ctx context.Context, m *worker.Message) error {
		calls.Add(1)
		return errors.New("ksef unavailable")
	})
	ev := accepted(7)
	e.publish(ev)
	dl := e.deadLetters(1)[0]
	if dl.ErrorKind != events.KindMaxDeliver || dl.Reason != "ksef unavailable" || dl.Deliveries != 3 ||
		dl.Stage != "retry" || dl.OriginalSubject != "t.invoice.accepted" || dl.OriginalSeq != 1 ||
		dl.OriginalMsgID != events.MsgID(ev) || dl.InvoiceID != "FV/7" || dl.ContextNIP != "5265877635" ||
		dl.CorrelationID != "corr-7" || dl.FirstFailedAt.IsZero() {
		t.Fatalf("dead letter %+v", dl)
	}
	orig, err := events.Decode(dl.OriginalData)
	if err != nil || orig.Common().InvoiceID != "FV/7" {
		t.Fatalf("original data: %v %v", orig, err)
	}
	if dl.OriginalHeaders[natsx.HeaderCorrelationID][0] != "corr-7" {
		t.Fatalf("original headers %v", dl.OriginalHeaders)
	}
	e.settled("retry")
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler called %d times, MaxFailures 3", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if strings.Count(logs, `"message":"handler failed"`) != 2 || !strings.Contains(logs, `"message":"message dead-lettered"`) {
		t.Fatalf("want one log line per failure:\n%s", logs)
	}
	if strings.Contains(logs, "5265877635-20260314") {
		t.Fatal("payload in logs")
	}
}

func TestRetryAfterSucceeds(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	done := make(chan struct{})
	var once sync.Once
	cfg := e.config("retry-after")
	cfg.Backoff = func(int) time.Duration { return time.Hour } // must not be used
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		if calls.Add(1) < 3 {
			return worker.RetryAfter(30*time.Millisecond, errors.New("429"))
		}
		once.Do(func() { close(done) })
		return nil
	})
	e.publish(accepted(1))
	recv(t, done)
	e.settled("retry-after")
	if e.dlqCount() != 0 {
		t.Fatal("dead-lettered")
	}
	// A later message starts with a fresh budget: its failures are its own.
	e.publish(accepted(2))
	eventually(t, func() bool { return calls.Load() >= 4 })
	e.settled("retry-after")
}

func TestPermanent(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(e.config("perm"), func(ctx context.Context, m *worker.Message) error {
		calls.Add(1)
		return fmt.Errorf("sending: %w", worker.Permanent(errors.New("invalid NIP in certificate")))
	})
	e.publish(accepted(1))
	dl := e.deadLetters(1)[0]
	if dl.ErrorKind != events.KindPermanent || dl.Deliveries != 1 || !strings.Contains(dl.Reason, "invalid NIP") {
		t.Fatalf("dead letter %+v", dl)
	}
	e.settled("perm")
	if calls.Load() != 1 {
		t.Fatalf("called %d times", calls.Load())
	}
}

func TestUndecodableMessages(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(e.config("decode"), func(ctx context.Context, m *worker.Message) error {
		calls.Add(1)
		return nil
	})
	v2, _ := msgpack.Marshal(map[string]any{"v": 2, "type": "invoice.accepted"})
	badNIP, _ := msgpack.Marshal(map[string]any{"v": 1, "type": "invoice.accepted", "event_id": "x"})
	e.publishRaw([]byte("not msgpack at all"))
	e.publishRaw(v2)
	e.publishRaw(badNIP)
	dls := e.deadLetters(3)
	want := map[string]events.ErrorKind{
		"not msgpack at all": events.KindMalformed,
		string(v2):           events.KindUnknownVersion,
		string(badNIP):       events.KindInvalid,
	}
	seqs := map[uint64]bool{}
	for _, dl := range dls {
		kind, ok := want[string(dl.OriginalData)]
		if !ok || dl.ErrorKind != kind || dl.Deliveries != 1 || dl.OriginalSeq == 0 || seqs[dl.OriginalSeq] {
			t.Errorf("dead letter %+v", dl)
		}
		delete(want, string(dl.OriginalData))
		seqs[dl.OriginalSeq] = true
	}
	e.settled("decode")
	if calls.Load() != 0 {
		t.Fatal("handler saw an undecodable message")
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	done := make(chan struct{})
	e.run(e.config("panic"), func(ctx context.Context, m *worker.Message) error {
		switch m.Event.Common().InvoiceID {
		case "FV/1": // panics once, then works
			if calls.Add(1) == 1 {
				panic("nil map")
			}
			close(done)
			return nil
		default: // always panics
			var mm map[string]int
			mm["x"]++
			return nil
		}
	})
	e.publish(accepted(1))
	recv(t, done)
	e.publish(accepted(2))
	dl := e.deadLetters(1)[0]
	if dl.ErrorKind != events.KindPanic || dl.InvoiceID != "FV/2" || !strings.Contains(dl.Reason, "panic") || dl.Deliveries != 3 {
		t.Fatalf("dead letter %+v", dl)
	}
	e.settled("panic")
}

func TestDrainFinishesInFlight(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	var handlerCtxErr atomic.Value
	stop := e.run(e.config("drain"), func(ctx context.Context, m *worker.Message) error {
		close(started)
		<-release
		time.Sleep(50 * time.Millisecond)
		if ctx.Err() != nil {
			handlerCtxErr.Store(ctx.Err())
		}
		finished.Store(true)
		return nil
	})
	e.publish(accepted(1))
	recv(t, started)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case <-stopped:
		t.Fatal("Run returned with a handler in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := recv(t, stopped); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() || handlerCtxErr.Load() != nil {
		t.Fatalf("handler finished %v, ctx error %v", finished.Load(), handlerCtxErr.Load())
	}
	// The in-flight message was acked before Run returned.
	info := e.settled("drain")
	if info.AckFloor.Stream != 1 {
		t.Fatalf("ack floor %d", info.AckFloor.Stream)
	}
}

func TestDrainTimeoutCancelsHandlers(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{})
	cfg := e.config("drain-timeout")
	cfg.DrainTimeout = 100 * time.Millisecond
	stop := e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		close(started)
		<-ctx.Done()
		return worker.Snooze(0)
	})
	e.publish(accepted(1))
	recv(t, started)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrency(t *testing.T) {
	e := newEnv(t)
	const n = 3
	var active, peak atomic.Int32
	var handled atomic.Int32
	gate := make(chan struct{})
	cfg := e.config("conc")
	cfg.Concurrency = n
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		a := active.Add(1)
		for {
			p := peak.Load()
			if a <= p || peak.CompareAndSwap(p, a) {
				break
			}
		}
		<-gate
		active.Add(-1)
		handled.Add(1)
		return nil
	})
	for i := range 2 * n {
		e.publish(accepted(i))
	}
	eventually(t, func() bool { return active.Load() == n })
	// Give a fourth handler the chance to start, were the pool unbounded.
	time.Sleep(200 * time.Millisecond)
	if p := peak.Load(); p != n {
		t.Fatalf("peak concurrency %d, want %d", p, n)
	}
	close(gate)
	eventually(t, func() bool { return handled.Load() == 2*n })
	e.settled("conc")
	if p := peak.Load(); p != n {
		t.Fatalf("peak concurrency %d, want %d", p, n)
	}
}

func TestDuplicatePublishHandledOnce(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	seen := map[string]int{}
	e.run(e.config("dedup"), func(ctx context.Context, m *worker.Message) error {
		mu.Lock()
		seen[m.Event.Common().InvoiceID]++
		mu.Unlock()
		return nil
	})
	first := accepted(1)
	e.publish(first)
	retry := accepted(1) // same fact, published again (e.g. after a crash)
	retry.OccurredAt = events.At(time.Now().Add(time.Minute))
	e.publish(retry)
	e.publish(accepted(2)) // sentinel
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["FV/2"] == 1
	})
	e.settled("dedup")
	mu.Lock()
	defer mu.Unlock()
	if seen["FV/1"] != 1 {
		t.Fatalf("FV/1 handled %d times", seen["FV/1"])
	}
}

func TestHeartbeatKeepsLongHandlers(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("heartbeat")
	cfg.AckWait = 600 * time.Millisecond
	cfg.Concurrency = 2 // room for a redelivery to show up
	var calls atomic.Int32
	done := make(chan struct{})
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		calls.Add(1)
		time.Sleep(3 * cfg.AckWait)
		close(done)
		return nil
	})
	e.publish(accepted(1))
	recv(t, done)
	e.settled("heartbeat")
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler called %d times: the message was redelivered while in progress", n)
	}
}

func TestMiddlewareAndOnSettled(t *testing.T) {
	e := newEnv(t)
	var order []string
	var mu sync.Mutex
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	mw := func(name string) worker.Middleware {
		return func(next worker.Handler) worker.Handler {
			return func(ctx context.Context, m *worker.Message) error {
				note(name + ">")
				err := next(ctx, m)
				note("<" + name)
				return err
			}
		}
	}
	outcomes := make(chan worker.Outcome, 2)
	cfg := e.config("mw")
	cfg.OnSettled = func(m *worker.Message, o worker.Outcome, err error, d time.Duration) { outcomes <- o }
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		note("handler")
		if m.Deliveries == 1 {
			return worker.Snooze(0)
		}
		return nil
	}, mw("a"), mw("b"))
	e.publish(accepted(1))
	if o := recv(t, outcomes); o != worker.Snoozed {
		t.Fatalf("first outcome %s", o)
	}
	if o := recv(t, outcomes); o != worker.Acked {
		t.Fatalf("second outcome %s", o)
	}
	mu.Lock()
	defer mu.Unlock()
	want := "a> b> handler <b <a a> b> handler <b <a"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t)
	h := func(context.Context, *worker.Message) error { return nil }
	for _, cfg := range []worker.Config{
		{Name: "", Subjects: []string{"t.invoice.sent"}},
		{Name: "bad.name", Subjects: []string{"t.invoice.sent"}},
		{Name: "ok"},
	} {
		cfg.NATS = e.nats
		if err := worker.Run(t.Context(), e.js, cfg, h); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := worker.ExponentialBackoff(time.Second, 10*time.Second)
	for _, tt := range []struct {
		n        int
		min, max time.Duration
	}{{1, 500 * time.Millisecond, time.Second}, {2, time.Second, 2 * time.Second}, {3, 2 * time.Second, 4 * time.Second}, {10, 5 * time.Second, 10 * time.Second}} {
		for range 20 {
			if d := b(tt.n); d < tt.min || d > tt.max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tt.n, d, tt.min, tt.max)
			}
		}
	}
}

var _ = nats.Header{}

func TestSubjectsMustBeInStream(t *testing.T) {
	e := newEnv(t)
	h := func(context.Context, *worker.Message) error { return nil }
	for _, s := range []string{"other.subject", "invoice.accepted", "t.>", "t.invoice"} {
		err := worker.Run(t.Context(), e.js, worker.Config{Name: "x", Subjects: []string{s}, NATS: e.nats}, h)
		if err == nil || !strings.Contains(err.Error(), "not in the stream") {
			t.Errorf("subject %q: err = %v", s, err)
		}
	}
	// Wildcards inside the stream are fine.
	for _, s := range []string{"t.invoice.>", "t.invoice.*", "t.dlq.invoice.sent"} {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		err := worker.Run(ctx, e.js, worker.Config{Name: "y", Subjects: []string{s}, NATS: e.nats}, h)
		cancel()
		if err != nil {
			t.Errorf("subject %q: %v", s, err)
		}
	}
}
