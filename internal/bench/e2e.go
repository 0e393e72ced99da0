package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Latency is how the emulator delays KSeF's answers.
type Latency struct {
	Name string
	// Call is added to every API call; Processing is the time from a send until the status
	// shows the outcome.
	Call, Processing time.Duration
}

// Floor is the least time from submission to acceptance that the emulator's configured delays
// allow: the send call's latency, then processing. The emulator adds a call's latency before it
// handles the call and answers at once, so a status call sent a latency before processing ends
// sees the outcome as it ends. Each invoice's own floor also counts the emulator's checks when
// they outlast the processing delay (see E2E.Added).
func (l Latency) Floor() time.Duration { return l.Call + l.Processing }

func (l Latency) emulator() emulator.Config {
	neg := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return emulator.Config{ProcessingDelay: neg(l.Processing), StorageDelay: -1,
		Limits: emulator.LimitConfig{Disabled: true}, Faults: emulator.Faults{Latency: l.Call}}
}

// Zero and KSeF are the two latency profiles of the end-to-end runs.
var (
	ZeroLatency = Latency{Name: "none"}
	KSeFLatency = Latency{Name: "150 ms/call, 2 s processing", Call: 150 * time.Millisecond, Processing: 2 * time.Second}
)

// E2E is the result of one end-to-end run.
type E2E struct {
	Name      string
	Latency   Latency
	Visualize bool
	// Replicas of each worker as separate processes; 0 means all in the bench process.
	Replicas int
	// Rate is the offered load (invoices/s); 0 means all published at once.
	Rate float64

	Invoices, Accepted, Rejected, Visualized int
	Elapsed                                  time.Duration // first publish to last acceptance
	VisualizedElapsed                        time.Duration // first publish to last PDF
	Throughput, VisualizedThroughput         float64       // invoices/s
	P50, P95, P99                            time.Duration // submitted -> accepted
	// AddedP50 and AddedP99 are percentiles of each invoice's latency less its own floor: the
	// send call's latency plus the time the emulator took from receiving the invoice to showing
	// its outcome (FloorP50 is that floor's median). Zero when the emulator could not tell.
	AddedP50, AddedP99, FloorP50 time.Duration
	// Stages split the latency (paced runs): submitted -> invoice.sent seen, invoice.sent seen ->
	// invoice.accepted seen, and the emulator's own time (received -> outcome shown).
	ToSent, ToAccepted, Emulator Spread
	// BenchCPU is the CPU time the bench process used from the first publish to the last
	// outcome: the emulator, the NATS server, the publisher and the event tracker, plus the
	// workers when they run in-process. WorkerCPU is the worker processes' (Replicas > 0).
	BenchCPU, WorkerCPU time.Duration
	// StatusCalls is ksefInvoiceStatus calls per accepted invoice.
	StatusCalls float64
	TooMany     int
	Problems    []string
}

// Spread is the median and 99th percentile of a stage.
type Spread struct{ P50, P99 time.Duration }

func spread(ds []time.Duration) Spread { return Spread{percentile(ds, 0.50), percentile(ds, 0.99)} }

// Added is what the pipeline adds to the emulator's own time at the median and the 99th
// percentile: per invoice when the run measured it, else against the configured floor.
func (r E2E) Added() (p50, p99 time.Duration) {
	if r.FloorP50 > 0 {
		return r.AddedP50, r.AddedP99
	}
	return r.P50 - r.Latency.Floor(), r.P99 - r.Latency.Floor()
}

// e2eRun configures one end-to-end run.
type e2eRun struct {
	name      string
	latency   Latency
	visualize bool
	rate      float64
	replicas  int       // > 0: separate processes
	invoices  []Invoice // to publish
	// before runs on the started environment before the workers start (baselines);
	// after runs once the invoices are settled, with the workers still running (memory).
	before, after func(ctx context.Context, v *env) error
}

// runE2E starts a fresh pipeline, publishes the invoices and waits until each is settled.
func (b *Bench) runE2E(ctx context.Context, r e2eRun) (E2E, error) {
	res := E2E{Name: r.name, Latency: r.latency, Visualize: r.visualize, Replicas: r.replicas, Rate: r.rate, Invoices: len(r.invoices)}
	b.logf("e2e %s: %d invoices ...", r.name, len(r.invoices))
	vars := baseEnv(&b.o)
	if r.visualize {
		vars["KSEF_VISUALIZE_ACCEPTED"] = "true"
	}
	tokens := map[string]string{}
	for _, inv := range r.invoices {
		tokens[inv.Seller] = "bench-token-" + inv.Seller
	}
	tokens[baselineSeller] = "bench-token-baseline"
	tokens[buyer] = "bench-token-buyer" // the downloader's query
	v, err := startEnv(ctx, b.dir(r.name), envConfig{Env: vars, Tokens: tokens, Emulator: r.latency.emulator(), Log: b.log})
	if err != nil {
		return res, err
	}
	defer v.close()
	if r.before != nil {
		if err := r.before(ctx, v); err != nil {
			return res, err
		}
	}
	tr := newTracker()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	tr.follow(fctx, v)

	workers := []string{pipeline.Sender, pipeline.Poller}
	if r.visualize {
		workers = append(workers, pipeline.Visualizer)
	}
	var alive []func() error
	var procs *procs
	if r.replicas > 0 {
		procs, err = b.startServices(ctx, v, workers, r.replicas)
		if err != nil {
			return res, err
		}
		defer procs.stop()
		alive = append(alive, procs.alive)
	} else {
		v.run(ctx, workers...)
	}

	statusBefore := v.e.Emulator.Requests(ksef.OpInvoiceStatus, 200) // the baselines' calls are not the pipeline's
	var workerCPU time.Duration
	if procs != nil {
		workerCPU, _ = procs.cpuTime() // their start-up is not the invoices' cost
	}
	benchCPU := selfCPU()
	start := time.Now()
	if err := publish(ctx, v, tr, r.invoices, r.rate); err != nil {
		return res, err
	}
	ids := make([]string, len(r.invoices))
	for i, inv := range r.invoices {
		ids[i] = inv.ID
	}
	timeout := b.o.Timeout
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	werr := tr.wait(wctx, func() bool {
		if len(tr.accepted)+len(tr.rejected) < len(ids) {
			return false
		}
		return !r.visualize || len(tr.visualized) >= len(tr.accepted)
	}, alive...)
	res.BenchCPU = selfCPU() - benchCPU
	if procs != nil {
		if cpu, err := procs.cpuTime(); err == nil {
			res.WorkerCPU = cpu - workerCPU
		}
	}
	tr.mu.Lock()
	res.Accepted, res.Rejected, res.Visualized = len(tr.accepted), len(tr.rejected), len(tr.visualized)
	var lat, added, floors, toSent, toAccepted, emu []time.Duration
	var last, lastVis time.Time
	for _, id := range ids {
		at, ok := tr.accepted[id]
		if !ok {
			continue
		}
		l := at.Sub(tr.published[id])
		lat = append(lat, l)
		if sent, ok := tr.sent[id]; ok {
			toSent, toAccepted = append(toSent, sent.Sub(tr.published[id])), append(toAccepted, at.Sub(sent))
		}
		if received, visible, ok := v.e.Emulator.Timing(tr.ksefIDs[id]); ok {
			floor := r.latency.Call + visible.Sub(received)
			emu, floors, added = append(emu, visible.Sub(received)), append(floors, floor), append(added, l-floor)
		}
		if at.After(last) {
			last = at
		}
		if vt, ok := tr.visualized[id]; ok && vt.After(lastVis) {
			lastVis = vt
		}
	}
	for id, why := range tr.rejected {
		if len(res.Problems) < 5 {
			res.Problems = append(res.Problems, "rejected "+id+": "+why)
		}
	}
	for i, dl := range tr.deadLetters {
		if i < 5 {
			res.Problems = append(res.Problems, "dead letter "+dl)
		}
	}
	tr.mu.Unlock()
	if !last.IsZero() {
		res.Elapsed = last.Sub(start)
		res.Throughput = float64(res.Accepted) / res.Elapsed.Seconds()
	}
	if !lastVis.IsZero() {
		res.VisualizedElapsed = lastVis.Sub(start)
		res.VisualizedThroughput = float64(res.Visualized) / res.VisualizedElapsed.Seconds()
	}
	res.P50, res.P95, res.P99 = percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99)
	if len(added) == len(lat) && len(lat) > 0 {
		res.AddedP50, res.AddedP99, res.FloorP50 = percentile(added, 0.50), percentile(added, 0.99), percentile(floors, 0.50)
	}
	res.ToSent, res.ToAccepted, res.Emulator = spread(toSent), spread(toAccepted), spread(emu)
	if res.Accepted > 0 {
		res.StatusCalls = float64(v.e.Emulator.Requests(ksef.OpInvoiceStatus, 200)-statusBefore) / float64(res.Accepted)
	}
	res.TooMany = v.e.Emulator.TooManyRequests()
	if werr != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("not settled after %s: %v", timeout, werr))
		if ctx.Err() == nil {
			werr = nil // a partial result is still a result; the problem is recorded
		}
	}
	b.logf("e2e %s: %d accepted, %d rejected in %s (%.0f/s), p50 %s p99 %s", r.name, res.Accepted, res.Rejected,
		res.Elapsed.Round(time.Millisecond), res.Throughput, res.P50.Round(time.Millisecond), res.P99.Round(time.Millisecond))
	if werr == nil && r.after != nil {
		werr = r.after(ctx, v)
	}
	return res, werr
}

// publish sends invoice.submitted for each invoice (inline XML up to the inline limit, the rest
// through storage), as fast as possible from several publishers or at rate per second.
func publish(ctx context.Context, v *env, tr *tracker, invoices []Invoice, rate float64) error {
	rt := v.e.Runtime
	inline := rt.Settings.NATS.MaxInlineSize
	if inline <= 0 {
		inline = events.DefaultMaxInlineSize
	}
	next := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				inv := invoices[i]
				ev := &events.InvoiceSubmitted{}
				ev.InvoiceID, ev.ContextNIP = inv.ID, inv.Seller
				if len(inv.XML) <= inline {
					ev.InlineXML = inv.XML
				} else {
					ref, err := putXML(ctx, v, inv)
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						continue
					}
					ev.XML = ref
				}
				tr.markPublished(inv.ID, time.Now())
				if err := rt.Publisher.Publish(ctx, ev, nil); err != nil {
					select {
					case errs <- fmt.Errorf("bench: publishing %s: %w", inv.ID, err):
					default:
					}
				}
			}
		}()
	}
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	var err error
loop:
	for i := range invoices {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case next <- i:
		case err = <-errs:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// putXML stores an invoice where an ERP would and returns its reference.
func putXML(ctx context.Context, v *env, inv Invoice) (*events.ObjectRef, error) {
	rt := v.e.Runtime
	key := filepath.ToSlash(filepath.Join("erp-outbox", inv.Seller, fmt.Sprintf("%x.xml", inv.ID)))
	info, err := rt.Store.Put(ctx, rt.Layout.Buckets.Invoices, key, bytesReader(inv.XML), int64(len(inv.XML)), storageMeta())
	if err != nil {
		return nil, fmt.Errorf("bench: storing %s: %w", inv.ID, err)
	}
	return &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size}, nil
}

// percentile of ds (nearest rank); 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
