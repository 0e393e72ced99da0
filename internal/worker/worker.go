package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Handler does a worker's work on one message; its returned error decides
// the message's fate (see Snooze, Retry, Permanent, DeadLetter).
type Handler func(ctx context.Context, m *Message) error

// Message is one delivery of a stream message.
type Message struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Event is the decoded event (set by the Decode middleware, which Run
	// installs).
	Event events.Event
	// Deliveries counts deliveries of this message, this one included
	// (snoozes count too; failures are counted separately).
	Deliveries int
	// Seq is the message's stream sequence.
	Seq uint64
	// CorrelationID comes from the Ksef-Correlation-Id header or the event.
	CorrelationID string
	// InProgress tells JetStream the message is still being worked on,
	// resetting its AckWait. The Heartbeat middleware calls it.
	InProgress func() error

	hold *hold // see Hold
}

// Outcome is what became of a message.
type Outcome string

const (
	Acked        Outcome = "acked"
	Snoozed      Outcome = "snoozed"
	Retried      Outcome = "retried"
	DeadLettered Outcome = "dead_lettered"
)

// Config configures one worker.
type Config struct {
	// Name is the durable consumer's name (letters, digits, '-', '_'),
	// e.g. "sender"; it is also the stage of its dead letters.
	Name string
	// Subjects are the full subjects consumed (with prefix), e.g.
	// cfg.NATS.Subjects().InvoiceSubmitted().
	Subjects []string
	// NATS gives the subject prefix (stream name, dead-letter subjects)
	// and the event codec's limits.
	NATS natsx.Config
	// Concurrency is how many messages are handled at once (default 1).
	Concurrency int
	// AckWait is how long JetStream waits for an outcome before
	// redelivering (default 30s); handlers running longer are kept alive
	// by heartbeats every AckWait/3.
	AckWait time.Duration
	// MaxFailures is the failure budget: on the MaxFailures-th failure the
	// message is dead-lettered (default 5).
	MaxFailures int
	// Backoff gives the redelivery delay after the n-th failure (n >= 1);
	// default ExponentialBackoff(time.Second, 5*time.Minute).
	Backoff func(failures int) time.Duration
	// MaxAckPending bounds unacknowledged messages of the consumer across
	// all instances, snoozed and held ones included (default 10000).
	MaxAckPending int
	// DrainTimeout is how long in-flight handlers may run on after ctx is
	// cancelled before their context is cancelled too (default AckWait).
	DrainTimeout time.Duration
	// FailureTTL is how long a message's failure count is remembered
	// (default 7 days).
	FailureTTL time.Duration
	// OnSettled, when set, is called after each message is settled (a hook
	// for metrics).
	OnSettled func(m *Message, o Outcome, err error, elapsed time.Duration)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c Config) withDefaults() Config {
	c.NATS = c.NATS.WithDefaults()
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.Backoff == nil {
		c.Backoff = ExponentialBackoff(time.Second, 5*time.Minute)
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 10000
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = c.AckWait
	}
	if c.FailureTTL <= 0 {
		c.FailureTTL = 7 * 24 * time.Hour
	}
	return c
}

func (c Config) validate() error {
	if !validName.MatchString(c.Name) {
		return fmt.Errorf("worker: name %q: use letters, digits, '-' and '_'", c.Name)
	}
	if len(c.Subjects) == 0 {
		return fmt.Errorf("worker %s: no subjects", c.Name)
	}
	if err := c.NATS.Validate(); err != nil {
		return err
	}
	for _, s := range c.Subjects {
		if !slices.ContainsFunc(c.NATS.Subjects().Wildcards(), func(w string) bool { return subjectIn(s, w) }) {
			return fmt.Errorf("worker %s: subject %q is not in the stream (%s)", c.Name, s,
				strings.Join(c.NATS.Subjects().Wildcards(), ", "))
		}
	}
	return nil
}

// subjectIn reports whether every subject matching filter also matches the
// stream subject w (whose wildcards are '*' tokens and a final '>').
func subjectIn(filter, w string) bool {
	ft, wt := strings.Split(filter, "."), strings.Split(w, ".")
	for i, t := range wt {
		if t == ">" {
			return len(ft) > i
		}
		if i >= len(ft) || ft[i] == ">" || (t != "*" && t != ft[i]) {
			return false
		}
	}
	return len(ft) == len(wt)
}

// ExponentialBackoff returns a backoff doubling from base up to max, with
// jitter (a delay in [d/2, d]) so that failures of many messages spread.
func ExponentialBackoff(base, max time.Duration) func(int) time.Duration {
	return func(failures int) time.Duration {
		d := base
		for i := 1; i < failures && d < max; i++ {
			d *= 2
		}
		d = min(d, max)
		return d/2 + rand.N(d/2+1)
	}
}

type runner struct {
	cfg     Config
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	pub     *natsx.Publisher
	handler Handler
	log     zerolog.Logger
	held    holds
}

// Run consumes cfg.Subjects with handler until ctx is cancelled, then
// drains: it stops pulling, lets in-flight handlers finish (up to
// DrainTimeout), and returns nil. It returns an error when the consumer
// cannot be set up or disappears.
//
// The durable pull consumer (explicit acks, MaxDeliver unlimited) is
// created or updated to cfg. JetStream counts every delivery, snoozes
// included, so it cannot tell failures from snoozes; Run counts failures
// itself in a KV bucket (names.Failures), keyed by consumer and stream
// sequence, and dead-letters once the budget is spent.
//
// Handlers run behind these middlewares, outermost first: mw (in order),
// Recover, Heartbeat(AckWait/3), Decode. Logs go to zerolog.Ctx(ctx),
// once per failure, with the correlation id and never the payload.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, handler Handler, mw ...Middleware) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	cons, kv, err := ensure(ctx, js, cfg)
	if err != nil {
		return err
	}
	chain := append(append([]Middleware{}, mw...), Recover(), Heartbeat(cfg.AckWait/3), Decode(cfg.NATS.Codec()))
	r := &runner{
		cfg: cfg, js: js, kv: kv,
		pub:     natsx.NewPublisher(js, cfg.NATS),
		handler: Chain(handler, chain...),
		log:     zerolog.Ctx(ctx).With().Str("worker", cfg.Name).Logger(),
	}
	return r.loop(ctx, cons)
}

// Ensure creates or updates the worker's durable consumer and its failure-count bucket as Run
// would: a provisioning step runs it with a privileged user, so that Run, given
// natsx.BindOnly, only looks them up.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	_, _, err := ensure(ctx, js, cfg)
	return err
}

func ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, jetstream.KeyValue, error) {
	stream := natsx.StreamName(cfg.NATS.SubjectPrefix)
	// The consumer takes the stream's replicas; a cluster that is still forming answers with
	// transient errors for a while, which natsx.Retry waits out.
	var cons jetstream.Consumer
	err := natsx.Retry(ctx, "consumer "+cfg.Name, func(ctx context.Context) error {
		var err error
		cons, err = js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:        cfg.Name,
			FilterSubjects: cfg.Subjects,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        cfg.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  cfg.MaxAckPending,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("worker %s: consumer: %w", cfg.Name, err)
	}
	kv, err := natsx.EnsureKV(ctx, js, names.Failures(cfg.NATS.SubjectPrefix), cfg.FailureTTL, natsx.KVReplicas(cfg.NATS.WithDefaults().Replicas))
	if err != nil {
		return nil, nil, fmt.Errorf("worker %s: %w", cfg.Name, err)
	}
	return cons, kv, nil
}

func (r *runner) loop(ctx context.Context, cons jetstream.Consumer) error {
	// At most one message waits in the client: the rest stay on the server,
	// where other instances can take them, and none sits out its AckWait in
	// a local buffer.
	subscribe := func() (jetstream.MessagesContext, error) {
		return cons.Messages(jetstream.PullMaxMessages(1), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	}
	it, err := subscribe()
	if err != nil {
		return fmt.Errorf("worker %s: %w", r.cfg.Name, err)
	}
	watch := newLeaderWatch(cons)
	// Handlers outlive ctx during the drain; hcancel ends them after
	// DrainTimeout.
	hctx, hcancel := context.WithCancel(r.log.WithContext(context.WithoutCancel(ctx)))
	defer hcancel()

	slots := make(chan struct{}, r.cfg.Concurrency)
	beats := make(chan struct{})
	defer close(beats)
	go r.held.heartbeats(r.cfg.AckWait/3, beats)
	var wg sync.WaitGroup
	var runErr error
	r.log.Info().Strs("subjects", r.cfg.Subjects).Int("concurrency", r.cfg.Concurrency).Msg("worker started")
pull:
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break pull
		}
		msg, err := r.next(ctx, it)
		if err != nil {
			<-slots
			switch {
			case ctx.Err() != nil:
				break pull
			case errors.Is(err, context.DeadlineExceeded):
				// Nothing came. If the consumer's leader has changed meanwhile (its node was
				// lost), the pull request went with the old leader: pull again.
				if from, to, moved := watch.idle(ctx); moved {
					r.log.Info().Str("from", from).Str("to", to).Msg("consumer leader changed; pulling from the new one")
					r.release(it)
					if it, err = subscribe(); err != nil {
						runErr = fmt.Errorf("worker %s: %w", r.cfg.Name, err)
						break pull
					}
				}
				continue // poll again
			case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrBadRequest):
				runErr = fmt.Errorf("worker %s: %w", r.cfg.Name, err)
				break pull
			}
			r.log.Warn().Err(err).Msg("pull failed")
			select {
			case <-ctx.Done():
				break pull
			case <-time.After(time.Second):
			}
			continue
		}
		watch.delivered()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r.process(hctx, msg)
		}()
	}

	r.release(it)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	deadline := time.After(r.cfg.DrainTimeout)
	select {
	case <-done:
	case <-deadline:
		r.log.Warn().Dur("drain_timeout", r.cfg.DrainTimeout).Msg("handlers still running; cancelling them")
		hcancel()
		<-done
		deadline = time.After(0)
	}
	// Held messages get what is left of the drain to be settled by the work they wait for.
	r.held.drain(deadline, r.log)
	r.log.Info().Msg("worker stopped")
	return runErr
}

// pollInterval bounds one wait for a message. The iterator issues its next
// pull request only from inside Next, and skips it while the previous
// request is still being sent; when that request was answered first, no
// request is outstanding and Next would wait for the missing-heartbeat
// timer (tens of seconds). Returning to Next regularly re-issues the pull.
// While a pull is outstanding the extra calls cost no network traffic.
const pollInterval = 500 * time.Millisecond

func (r *runner) next(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	nctx, cancel := context.WithTimeout(ctx, pollInterval)
	defer cancel()
	return it.Next(jetstream.NextContext(nctx))
}

// leaderCheck is how long a worker waits without a message before it asks which server leads its
// consumer (one JetStream API request per check while idle).
const leaderCheck = 5 * time.Second

// leaderWatch notices that the consumer has had a leader elected since it last looked, while no
// message came. A pull request lives on the server that led the consumer when it was sent: when
// that server is lost (killed, not shut down, so it tells no one), the request is gone, and the
// iterator, which re-pulls only once it has heard of the loss through missing heartbeats that
// its Next calls of pollInterval never wait long enough to see, would wait for messages forever
// while they pile up on the new leader. The leader and the time it was elected (the server's
// clock, compared only with itself) tell an election, even one that chose the same server again.
type leaderWatch struct {
	cons        jetstream.Consumer
	leader      string
	since       time.Time
	lastMessage time.Time
	lastCheck   time.Time
}

func newLeaderWatch(cons jetstream.Consumer) *leaderWatch {
	w := &leaderWatch{cons: cons, lastMessage: time.Now(), lastCheck: time.Now()}
	if info := cons.CachedInfo(); info != nil {
		w.leader, w.since = leaderOf(info)
	}
	return w
}

func leaderOf(info *jetstream.ConsumerInfo) (string, time.Time) {
	if info.Cluster == nil {
		return "", time.Time{}
	}
	var since time.Time
	if info.Cluster.LeaderSince != nil {
		since = *info.Cluster.LeaderSince
	}
	return info.Cluster.Leader, since
}

func (w *leaderWatch) delivered() { w.lastMessage = time.Now() }

// idle is called when a poll brought nothing; at most every leaderCheck of idleness it asks who
// leads the consumer and reports whether a leader was elected since it last knew.
func (w *leaderWatch) idle(ctx context.Context) (from, to string, moved bool) {
	now := time.Now()
	if now.Sub(w.lastMessage) < leaderCheck || now.Sub(w.lastCheck) < leaderCheck {
		return "", "", false
	}
	w.lastCheck = now
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := w.cons.Info(ictx)
	if err != nil {
		return "", "", false // no leader yet: ask again later
	}
	leader, since := leaderOf(info)
	if leader == "" {
		return "", "", false
	}
	from, moved = w.leader, leader != w.leader || !since.Equal(w.since)
	w.leader, w.since = leader, since
	return from, leader, moved
}

// release stops pulling and hands back (nak) a message that was delivered
// to the client but not yet taken, so another instance need not wait for
// its AckWait.
func (r *runner) release(it jetstream.MessagesContext) {
	it.Drain()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		msg, err := it.Next(jetstream.NextContext(ctx))
		cancel()
		if err != nil {
			it.Stop()
			return
		}
		_ = msg.Nak()
	}
}

// process runs the handler on one message and settles it.
func (r *runner) process(ctx context.Context, msg jetstream.Msg) {
	start := time.Now()
	m := &Message{
		Subject:       msg.Subject(),
		Data:          msg.Data(),
		Header:        msg.Headers(),
		CorrelationID: msg.Headers().Get(natsx.HeaderCorrelationID),
		InProgress:    msg.InProgress,
	}
	h := &hold{r: r, msg: msg, m: m, start: start}
	m.hold = h
	if md, err := msg.Metadata(); err == nil {
		m.Deliveries, m.Seq = int(md.NumDelivered), md.Sequence.Stream
	}
	lc := r.log.With().Str("subject", m.Subject).Uint64("seq", m.Seq).Int("deliveries", m.Deliveries)
	if m.CorrelationID != "" {
		lc = lc.Str("correlation_id", m.CorrelationID)
	}
	log := lc.Logger()
	ctx = log.WithContext(ctx)

	err := r.call(ctx, m)
	if m.CorrelationID != "" && msg.Headers().Get(natsx.HeaderCorrelationID) == "" {
		log = log.With().Str("correlation_id", m.CorrelationID).Logger()
	}
	h.log = log
	if now, err := h.afterHandler(err); now {
		r.finish(h, err)
	}
}

// call runs the handler; a panic escaping the middlewares (in a user
// middleware outside Recover) is still a failure, never a crash.
func (r *runner) call(ctx context.Context, m *Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v}
		}
	}()
	return r.handler(ctx, m)
}

func (r *runner) settle(ctx context.Context, msg jetstream.Msg, m *Message, herr error) Outcome {
	log := zerolog.Ctx(ctx)
	var snooze *snoozeError
	var dl *deadLetterError
	switch {
	case herr == nil:
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn().Err(err).Msg("ack failed; the message will be redelivered")
		}
		if m.Deliveries > 1 {
			r.clearFailures(ctx, m)
		}
		return Acked
	case errors.As(herr, &snooze):
		log.Debug().Dur("delay", snooze.d).Msg("snoozed")
		r.nak(ctx, msg, snooze.d)
		return Snoozed
	case errors.As(herr, &dl):
		return r.deadLetter(ctx, msg, m, dl.kind, herr, time.Time{})
	}

	f, err := r.recordFailure(ctx, m, herr)
	if err != nil {
		// Without the count, retry with backoff and do not dead-letter.
		log.Error().Err(herr).AnErr("kv_error", err).Msg("handler failed; failure count unavailable")
		r.nak(ctx, msg, r.cfg.Backoff(m.Deliveries))
		return Retried
	}
	if f.Failures >= r.cfg.MaxFailures {
		kind := events.KindMaxDeliver
		if f.Panic {
			kind = events.KindPanic
		}
		return r.deadLetter(ctx, msg, m, kind, herr, f.FirstFailedAt)
	}
	delay := r.cfg.Backoff(f.Failures)
	var re *retryError
	if errors.As(herr, &re) && re.after > 0 {
		delay = re.after
	}
	ev := log.Warn().Err(herr).Int("failures", f.Failures).Int("max_failures", r.cfg.MaxFailures).Dur("retry_in", delay)
	var pe *PanicError
	if errors.As(herr, &pe) && pe.Stack != nil {
		ev = ev.Bytes("stack", pe.Stack)
	}
	ev.Msg("handler failed")
	r.nak(ctx, msg, delay)
	return Retried
}

func (r *runner) nak(ctx context.Context, msg jetstream.Msg, d time.Duration) {
	var err error
	if d > 0 {
		err = msg.NakWithDelay(d)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("nak failed; the message will be redelivered after AckWait")
	}
}

// failureRecord is a message's failure count in the KV bucket.
type failureRecord struct {
	Failures      int       `json:"failures"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	Panic         bool      `json:"panic"` // the last failure was a panic
}

func (r *runner) failureKey(m *Message) string {
	return r.cfg.Name + "." + strconv.FormatUint(m.Seq, 10)
}

// recordFailure adds one failure to m's count (compare-and-set, so two
// instances handling the same message do not lose one).
func (r *runner) recordFailure(ctx context.Context, m *Message, herr error) (failureRecord, error) {
	key := r.failureKey(m)
	var pe *PanicError
	isPanic := errors.As(herr, &pe)
	for range 5 {
		var f failureRecord
		var rev uint64
		e, err := r.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return f, err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &f); err != nil {
				f = failureRecord{} // unreadable: start over
			}
		}
		f.Failures++
		if f.FirstFailedAt.IsZero() {
			f.FirstFailedAt = time.Now().UTC()
		}
		f.Panic = isPanic
		b, _ := json.Marshal(f)
		if rev == 0 {
			_, err = r.kv.Create(ctx, key, b)
		} else {
			_, err = r.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongSequence(err) {
			return f, err
		}
	}
	return failureRecord{}, errors.New("failure count contended")
}

// wrongSequence matches a compare-and-set conflict, on one replica or several.
func wrongSequence(err error) bool { return natsx.IsWrongSequence(err) }

func (r *runner) clearFailures(ctx context.Context, m *Message) {
	key := r.failureKey(m)
	if _, err := r.kv.Get(ctx, key); err != nil {
		return // nothing recorded (or KV down: the entry expires by TTL)
	}
	if err := r.kv.Delete(ctx, key); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("clearing failure count failed")
	}
}

// maxReason bounds the reason copied into a dead letter.
const maxReason = 2000

// deadLetter publishes a DeadLettered event for m and terminates m. If the
// publish fails, m is redelivered after backoff instead: nothing is lost.
func (r *runner) deadLetter(ctx context.Context, msg jetstream.Msg, m *Message, kind events.ErrorKind, herr error, firstFailed time.Time) Outcome {
	log := zerolog.Ctx(ctx)
	reason := herr.Error()
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "..."
	}
	switch kind {
	case events.KindMalformed, events.KindUnknownVersion, events.KindInvalid,
		events.KindPermanent, events.KindMaxDeliver, events.KindPanic:
	default:
		kind = events.KindPermanent
	}
	dl := &events.DeadLettered{
		Meta:            events.Meta{CorrelationID: m.CorrelationID},
		OriginalSubject: m.Subject,
		OriginalData:    m.Data,
		OriginalHeaders: map[string][]string(m.Header),
		OriginalMsgID:   m.Header.Get(jetstream.MsgIDHeader),
		OriginalSeq:     m.Seq,
		Reason:          reason,
		ErrorKind:       kind,
		Deliveries:      m.Deliveries,
		Stage:           r.cfg.Name,
		FirstFailedAt:   events.At(firstFailed),
	}
	if firstFailed.IsZero() {
		dl.FirstFailedAt = events.At(time.Now())
	}
	if m.Event != nil {
		c := m.Event.Common()
		dl.InvoiceID, dl.ContextNIP = c.InvoiceID, c.ContextNIP
	}
	if !validCorrelation(dl.CorrelationID) {
		dl.CorrelationID = ""
	}
	err := r.pub.Publish(ctx, dl, nil)
	if err != nil && !natsx.Transient(err) {
		// Too large or otherwise unpublishable: the original stays in the
		// stream at original_seq, so send the dead letter without it.
		dl.OriginalData, dl.OriginalHeaders = nil, nil
		dl.Reason += " (original data left out of the dead letter: " + err.Error() + ")"
		err = r.pub.Publish(ctx, dl, nil)
	}
	if err != nil {
		log.Error().Err(err).AnErr("handler_error", herr).Msg("dead-letter publish failed; will retry")
		r.nak(ctx, msg, r.cfg.Backoff(1))
		return Retried
	}
	log.Error().Err(herr).Str("error_kind", string(kind)).Str("dlq_subject", r.pub.Subjects().For(dl)).Msg("message dead-lettered")
	if err := msg.TermWithReason(string(kind)); err != nil {
		log.Warn().Err(err).Msg("term failed; the message may be dead-lettered again (deduplicated)")
	}
	r.clearFailures(ctx, m)
	return DeadLettered
}

// validCorrelation mirrors the events id rules, so a garbage header does
// not make the dead letter itself invalid.
func validCorrelation(s string) bool {
	probe := &events.DeadLettered{Meta: events.Meta{V: events.Version, EventID: "x", CorrelationID: s, OccurredAt: events.At(time.Now())},
		OriginalSubject: "x", Reason: "x", ErrorKind: events.KindInvalid, Stage: "x"}
	return probe.Validate() == nil
}
