// Package bench measures the pipeline end to end against the in-process KSeF emulator: throughput
// and latency from submission to acceptance, the one-at-a-time baseline and the messaging floor
// in the same run, scaling with worker processes, the peak memory of the downloader and the
// sender, what one context and many get through under KSeF's production request limits on an
// accelerated clock, and the per-stage Go benchmarks. cmd/ksef-bench is its thin main; the
// results go to a Markdown table and a PNG chart.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// buyer is the buyer of every generated invoice (the demo's).
const buyer = "5213017228"

// Sections of a run, in the order they run.
var Sections = []string{"e2e", "scaling", "memory", "limits", "gobench"}

// Options of a bench run. Zero values take the defaults of Defaults(quick).
type Options struct {
	Quick bool
	// N invoices in each throughput run; Contexts sellers they come from.
	N, Contexts int
	// PacedN invoices at PacedRate per second measure latency under a light load.
	PacedN    int
	PacedRate float64
	// BaselineN invoices go one at a time.
	BaselineN int
	// Replicas of each worker process in the scaling runs, ScalingN invoices each.
	Replicas []int
	ScalingN int
	// BatchPart is the size of the sender's batch part in the memory run (bytes).
	BatchPart int64
	// KSeFHour is the real duration of one KSeF hour in the runs under the limits; LimitOnline
	// and LimitBatch invoices are offered to one context; ManyContexts get PerContext each.
	KSeFHour time.Duration
	// BatchHour is the real duration of the KSeF hour of the one-context-batch run: long
	// enough for this machine to validate and package what KSeF's batch limits allow, so that
	// the run measures more than the CPU (default 12m; quick 10s).
	BatchHour                time.Duration
	LimitOnline, LimitBatch  int
	ManyContexts, PerContext int
	// BenchTime is go test's -benchtime for the per-stage benchmarks.
	BenchTime string
	// Timeout bounds the wait for one run's invoices.
	Timeout time.Duration

	Seed      int64
	SchemaDir string
	// Dir is the working directory (NATS, objects, logs, binaries); ResultsDir gets the report.
	Dir, ResultsDir string
	RepoRoot        string
	// Only runs these sections (all when empty); Runs only these end-to-end runs (by name).
	Only, Runs []string
	// Progress gets a line per step; Log the pipeline's own log.
	Progress io.Writer      `json:"-"`
	Log      zerolog.Logger `json:"-"`
}

// Defaults fills in zero options: a full run, or a CI-sized one.
func (o Options) Defaults() Options {
	set := func(p *int, full, quick int) {
		if *p == 0 {
			*p = full
			if o.Quick {
				*p = quick
			}
		}
	}
	set(&o.N, 10_000, 150)
	set(&o.Contexts, 10, 4)
	set(&o.PacedN, 400, 30)
	set(&o.BaselineN, 20, 3)
	set(&o.ScalingN, 3_000, 100)
	set(&o.LimitOnline, 2*OnlineAllowance, OnlineAllowance+20)
	set(&o.LimitBatch, 130_000, 500)
	set(&o.ManyContexts, 1_000, 50)
	set(&o.PerContext, 3, 1)
	if o.PacedRate == 0 {
		o.PacedRate = 20
	}
	if len(o.Replicas) == 0 {
		o.Replicas = []int{1, 2, 4}
		if o.Quick {
			o.Replicas = []int{1, 2}
		}
	}
	if o.BatchPart == 0 {
		o.BatchPart = 100_000_000
		if o.Quick {
			o.BatchPart = 10_000_000
		}
	}
	if o.KSeFHour == 0 {
		o.KSeFHour = 2 * time.Minute
		if o.Quick {
			o.KSeFHour = 10 * time.Second
		}
	}
	if o.BatchHour == 0 {
		o.BatchHour = 12 * time.Minute
		if o.Quick {
			o.BatchHour = 10 * time.Second
		}
	}
	if o.BenchTime == "" {
		o.BenchTime = "1s"
		if o.Quick {
			o.BenchTime = "100ms"
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
		if o.Quick {
			o.Timeout = 2 * time.Minute
		}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Bench is one bench run.
type Bench struct {
	o   Options
	log zerolog.Logger

	buildOnce sync.Once
	binDir    string
	buildErr  error
}

// Report is everything a run measured.
type Report struct {
	Options  Options
	Machine  Machine
	Started  time.Time
	Duration time.Duration

	E2E       []E2E
	Baselines []Baseline
	Raw       *Raw
	Scaling   []E2E
	Memory    []Memory
	Limited   []Limited
	GoBench   []GoBench
	Problems  []string
}

// Run runs the selected sections and returns what they measured. Failures of single runs are
// recorded in the report's Problems; an error means the run could not go on.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.Defaults()
	if o.RepoRoot == "" {
		wd, _ := os.Getwd()
		root, err := repoRoot(wd)
		if err != nil {
			return nil, err
		}
		o.RepoRoot = root
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "ksef-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	b := &Bench{o: o, log: o.Log}
	rep := &Report{Options: o, Machine: readMachine(), Started: time.Now()}
	on := func(s string) bool {
		if len(o.Only) == 0 {
			// The per-stage benchmarks compile seven packages' tests: not in a quick run's budget.
			return !o.Quick || s != "gobench"
		}
		return slices.Contains(o.Only, s)
	}
	problem := func(what string, err error) {
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", what, err))
			b.logf("PROBLEM %s: %v", what, err)
		}
	}
	b.logf("machine: %d CPUs (%s), %s, load %s", rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.Machine.LoadBefore)

	var invoices []Invoice
	if on("e2e") || on("scaling") || on("memory") {
		b.logf("generating %d invoices from %d sellers ...", o.N, o.Contexts)
		var err error
		invoices, err = NewGenerator(o.Seed, buyer, time.Now()).Many(max(o.N, o.ScalingN), func(i int) string { return NIP(1000 + i%o.Contexts) })
		if err != nil {
			return nil, err
		}
	}
	if on("e2e") {
		baseN := min(o.BaselineN, len(invoices))
		base := func(lat Latency) func(context.Context, *env) error {
			return func(ctx context.Context, v *env) error {
				bi := make([]Invoice, baseN)
				for i := range bi {
					inv, err := NewGenerator(o.Seed+3, baselineBuyer, time.Now()).Invoice(baselineSeller, i)
					if err != nil {
						return err
					}
					bi[i] = inv
				}
				b.logf("baseline: %d invoices one at a time (latency %s) ...", baseN, lat.Name)
				r, err := oneAtATime(ctx, v, bi, lat)
				problem("one-at-a-time baseline", err)
				if err == nil {
					rep.Baselines = append(rep.Baselines, r)
				}
				return nil
			}
		}
		inv := invoices[:o.N]
		first := e2eRun{name: "zero-latency", latency: ZeroLatency, invoices: inv,
			before: func(ctx context.Context, v *env) error {
				if err := base(ZeroLatency)(ctx, v); err != nil {
					return err
				}
				b.logf("raw JetStream: %d messages ...", len(inv))
				raw, err := rawJetStream(ctx, v, inv)
				problem("raw JetStream floor", err)
				if err == nil {
					rep.Raw = &raw
				}
				return nil
			}}
		if on("memory") {
			first.after = func(ctx context.Context, v *env) error {
				rep.Memory = append(rep.Memory, b.downloaderMemory(ctx, v, buyer, len(inv)))
				return nil
			}
		}
		runs := []e2eRun{
			first,
			{name: "zero-latency+pdf", latency: ZeroLatency, visualize: true, invoices: inv},
			{name: "ksef-latency", latency: KSeFLatency, invoices: inv, before: base(KSeFLatency)},
			{name: "ksef-latency+pdf", latency: KSeFLatency, visualize: true, invoices: inv},
			{name: "paced-zero-latency", latency: ZeroLatency, rate: o.PacedRate, invoices: inv[:min(o.PacedN, len(inv))]},
			{name: "paced-ksef-latency", latency: KSeFLatency, rate: o.PacedRate, invoices: inv[:min(o.PacedN, len(inv))]},
		}
		for _, r := range runs {
			if len(o.Runs) > 0 && !slices.Contains(o.Runs, r.name) {
				continue
			}
			res, err := b.runE2E(ctx, r)
			problem("e2e "+r.name, err)
			rep.E2E = append(rep.E2E, res)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	if on("scaling") {
		sinv := invoices[:min(o.ScalingN, len(invoices))]
		for _, n := range o.Replicas {
			res, err := b.runE2E(ctx, e2eRun{name: fmt.Sprintf("%d-replicas", n), latency: ZeroLatency, replicas: n, invoices: sinv})
			problem(fmt.Sprintf("scaling %d replicas", n), err)
			rep.Scaling = append(rep.Scaling, res)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	if on("memory") {
		if !on("e2e") {
			inv := invoices[:o.N]
			_, err := b.runE2E(ctx, e2eRun{name: "download-source", latency: ZeroLatency, invoices: inv,
				after: func(ctx context.Context, v *env) error {
					rep.Memory = append(rep.Memory, b.downloaderMemory(ctx, v, buyer, len(inv)))
					return nil
				}})
			problem("downloader memory", err)
		}
		rep.Memory = append(rep.Memory, b.senderMemory(ctx, o.BatchPart))
	}
	if on("limits") {
		for _, r := range []limitRun{
			{name: "one-context-online", contexts: 1, perCtx: o.LimitOnline, hour: o.KSeFHour},
			{name: "one-context-batch", contexts: 1, perCtx: o.LimitBatch, batch: true, hour: o.BatchHour},
			{name: "many-contexts", contexts: o.ManyContexts, perCtx: o.PerContext, batch: true, hour: o.KSeFHour, untilDone: true},
		} {
			rep.Limited = append(rep.Limited, b.runLimited(ctx, r))
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	if on("gobench") {
		var probs []string
		rep.GoBench, probs = b.runGoBenches(ctx)
		rep.Problems = append(rep.Problems, probs...)
	}
	rep.Machine.LoadAfter = loadAvg()
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// dir is a fresh working directory for one run.
func (b *Bench) dir(name string) string { return filepath.Join(b.o.Dir, name) }
