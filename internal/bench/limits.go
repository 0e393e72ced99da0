package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// OnlineAllowance is how many invoices one context may send online in an hour under the
// production limits (ksefInvoiceSend: 10/s, 30/min, 180/h).
var OnlineAllowance = ksef.ProductionLimits()[ksef.OpInvoiceSend].PerHour

// Limited is a run under KSeF's production request limits, enforced by the emulator, on an
// accelerated clock.
type Limited struct {
	Name     string
	Contexts int
	Batch    bool
	Offered  int
	// ClockHours is how much KSeF time the run covered; Factor how much faster than real time
	// that clock ran.
	ClockHours float64
	Factor     float64
	Real       time.Duration
	// Sent is how many invoices KSeF took (invoice.sent) within the run; Accepted how many
	// were accepted by its end.
	Sent, Accepted int
	PerHour        float64 // Sent per KSeF hour
	// Drained: every offered invoice was through before the hour ended, so PerHour says how
	// fast the backlog went, not how much the limits allow.
	Drained     bool
	TooMany     int // 429 answers
	TooManyByOp map[string]int
	Sessions    int
	// BatchSessions is how many batch sessions KSeF opened and LargestPackage the most invoices
	// one of them carried (session.closed).
	BatchSessions, LargestPackage int
	// Bound says what limited Sent: the offer, KSeF's limits, or this machine.
	Bound   string
	Problem string
}

// batchSessionsPerHour and batchPackage are KSeF's bounds on batch sending for one context: 60
// session opens an hour, 10,000 invoices a package.
var batchSessionsPerHour = ksef.ProductionLimits()[ksef.OpSessionOpenBatch].PerHour

const batchPackage = 10_000

// bound says what limited a run: the offer when everything went through, KSeF when the context
// used (nearly) all it allows, else the pipeline on this machine.
func (l Limited) bound() string {
	switch {
	case l.Drained:
		return "the offer (backlog drained before the KSeF hour ended)"
	case !l.Batch:
		return fmt.Sprintf("KSeF's online limit (%d sends an hour)", OnlineAllowance)
	case float64(l.BatchSessions) >= 0.95*float64(batchSessionsPerHour)*l.ClockHours && l.LargestPackage >= batchPackage:
		return fmt.Sprintf("KSeF's batch limits (%d sessions an hour x %d invoices)", batchSessionsPerHour, batchPackage)
	case float64(l.BatchSessions) >= 0.95*float64(batchSessionsPerHour)*l.ClockHours:
		return fmt.Sprintf("KSeF's %d batch sessions an hour, spent on packages smaller than %d invoices", batchSessionsPerHour, batchPackage)
	}
	return fmt.Sprintf("this machine: a backlog was left with %d of KSeF's %.0f batch sessions used and packages of at most %d of %d invoices, so the pipeline (validation, storage, NATS on %d CPUs, beside the emulator) was the limit",
		l.BatchSessions, float64(batchSessionsPerHour)*l.ClockHours, l.LargestPackage, batchPackage, runtime.NumCPU())
}

// limitRun configures one run under the limits.
type limitRun struct {
	name     string
	contexts int
	perCtx   int
	batch    bool
	hour     time.Duration // real time of one KSeF hour
	// untilDone ends the run once every invoice is accepted (else after one KSeF hour).
	untilDone bool
}

// runLimited offers a backlog to contexts under production limits on an accelerated clock and
// counts what KSeF took within one KSeF hour (or until everything is through).
func (b *Bench) runLimited(ctx context.Context, r limitRun) Limited {
	factor := float64(time.Hour) / float64(r.hour)
	res := Limited{Name: r.name, Contexts: r.contexts, Batch: r.batch, Offered: r.contexts * r.perCtx, Factor: factor}
	b.logf("limits %s: %d contexts x %d invoices, one KSeF hour = %s ...", r.name, r.contexts, r.perCtx, r.hour)
	nips := make([]string, r.contexts)
	tokens := map[string]string{}
	for i := range nips {
		nips[i] = NIP(i)
		tokens[nips[i]] = fmt.Sprintf("bench-token-%d", i)
	}
	g := NewGenerator(b.o.Seed+11, buyer, time.Now())
	g.MinLines, g.MaxLines = 1, 8 // small invoices: the limits, not the bytes, are measured
	invoices, err := g.Many(res.Offered, func(i int) string { return nips[i%len(nips)] })
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	vars := baseEnv(&b.o)
	vars["KSEF_LIMITS"] = "production"
	// A package a KSeF minute: the session budget (60 an hour) on the accelerated clock.
	vars["KSEF_BATCH_INTERVAL"] = (r.hour / time.Duration(batchSessionsPerHour)).String()
	if !r.batch {
		vars["KSEF_BATCH"] = "false"
		// Handlers wait for their slot in the limiter (on the accelerated clock) instead of
		// snoozing their messages: JetStream's redelivery delays run on real time.
		vars["KSEF_MAX_LIMIT_WAIT"] = "2h"
	}
	em := ZeroLatency.emulator()
	em.Limits = emulator.LimitConfig{} // production
	em.ProcessingDelay = 2 * time.Second
	em.StorageDelay = time.Second
	clock := NewClock(factor)
	v, err := startEnv(ctx, b.dir("limits-"+r.name), envConfig{Env: vars, Tokens: tokens, Emulator: em, Clock: clock, Log: b.log})
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	defer v.close()
	tr := newTracker()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	tr.follow(fctx, v)
	packages := followPackages(fctx, v)
	// The backlog is in place before the workers start, as after an ERP's month-end run.
	if err := publish(ctx, v, tr, invoices, 0); err != nil {
		res.Problem = err.Error()
		return res
	}
	clock.Restart()
	startReal := time.Now()
	v.run(ctx, pipeline.Sender, pipeline.Poller)
	limit := r.hour
	if r.untilDone {
		limit = b.o.Timeout
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err = tr.wait(wctx, func() bool { return len(tr.accepted)+len(tr.rejected) >= len(invoices) })
	res.Real = time.Since(startReal)
	res.ClockHours = clock.Elapsed().Hours()
	st := v.e.Emulator.Stats()
	tr.mu.Lock()
	res.Sent, res.Accepted = len(tr.sent), len(tr.accepted)
	rejected := len(tr.rejected)
	tr.mu.Unlock()
	res.TooMany, res.Sessions = st.TooManyRequests, st.Sessions
	for op, byStatus := range st.Requests {
		if n := byStatus[429]; n > 0 {
			if res.TooManyByOp == nil {
				res.TooManyByOp = map[string]int{}
			}
			res.TooManyByOp[string(op)] = n
		}
	}
	res.PerHour = float64(res.Sent) / res.ClockHours
	res.Drained = err == nil
	res.BatchSessions = st.Requests[ksef.OpSessionOpenBatch][200]
	res.LargestPackage = packages.largest()
	res.Bound = res.bound()
	if rejected > 0 {
		res.Problem = fmt.Sprintf("%d rejected", rejected)
	}
	if r.untilDone && err != nil {
		res.Problem += fmt.Sprintf(" not all through after %s: %v", limit, err)
	}
	b.logf("limits %s: %d sent, %d accepted in %.2f KSeF hours (%s real); %d x 429; %d batch sessions, largest package %d; bound by %s",
		r.name, res.Sent, res.Accepted, res.ClockHours, res.Real.Round(time.Second), res.TooMany, res.BatchSessions, res.LargestPackage, res.Bound)
	return res
}

// packageSizes records the batch packages' sizes from session.closed.
type packageSizes struct {
	mu  sync.Mutex
	max int
}

func (p *packageSizes) largest() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

func followPackages(ctx context.Context, v *env) *packageSizes {
	p := &packageSizes{}
	rt := v.e.Runtime
	opts := natsx.FollowOptions{Live: true, Subjects: []string{rt.Settings.NATS.Subjects().SessionClosed()}}
	go natsx.Follow(ctx, rt.JS, rt.Settings.NATS, opts, func(d natsx.Delivered) error {
		if c, ok := d.Event.(*events.SessionClosed); ok && c.Mode == events.ModeBatch {
			p.mu.Lock()
			p.max = max(p.max, c.InvoiceCount)
			p.mu.Unlock()
		}
		return nil
	})
	return p
}
