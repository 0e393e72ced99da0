package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Target is one of the project's performance goals and where the run stands.
type Target struct {
	Goal, Measured string
	Met            bool
	Known          bool // false: not measured in this run
}

// Targets compares the run with the project's goals.
func (r *Report) Targets() []Target {
	var out []Target
	add := func(goal string, known, met bool, format string, args ...any) {
		out = append(out, Target{Goal: goal, Measured: fmt.Sprintf(format, args...), Met: met, Known: known})
	}
	e2e := func(name string) *E2E {
		for i := range r.E2E {
			if r.E2E[i].Name == name && r.E2E[i].Accepted > 0 {
				return &r.E2E[i]
			}
		}
		return nil
	}
	if t := e2e("zero-latency"); t != nil {
		add(fmt.Sprintf("≥ 1,000 invoices/s end to end (limits off, no latency, no PDF, %d CPUs)", r.Machine.CPUs),
			true, t.Throughput >= 1000, "%.0f invoices/s", t.Throughput)
	}
	if t := e2e("paced-zero-latency"); t != nil {
		p50, p99 := t.Added()
		add("pipeline adds ≤ 5 ms p50, ≤ 25 ms p99 (no emulator latency)", true, p50 <= 5*time.Millisecond && p99 <= 25*time.Millisecond,
			"%s p50, %s p99 over each invoice's floor (p50 %s: the emulator's checks)", signed(p50), signed(p99), ms(t.FloorP50))
	}
	if t := e2e("paced-ksef-latency"); t != nil {
		p50, p99 := t.Added()
		add("pipeline adds ≤ 5 ms p50, ≤ 25 ms p99 beyond KSeF's delays ("+t.Latency.Name+")", true,
			p50 <= 5*time.Millisecond && p99 <= 25*time.Millisecond, "%s p50, %s p99 over each invoice's floor (p50 %s)", signed(p50), signed(p99), ms(t.FloorP50))
	}
	if t := e2e("ksef-latency"); t != nil {
		for _, b := range r.Baselines {
			if b.Latency == KSeFLatency && b.Throughput > 0 {
				x := t.Throughput / b.Throughput
				add("≥ 50× the one-at-a-time baseline with 150 ms KSeF latency", true, x >= 50, "%.0f× (%.1f vs %.2f invoices/s)", x, t.Throughput, b.Throughput)
			}
		}
	}
	for _, l := range r.Limited {
		switch l.Name {
		case "one-context-online":
			share := l.PerHour / float64(OnlineAllowance)
			add(fmt.Sprintf("production limits: ≥ 95%% of the online allowance (%d/h) per context, zero 429s", OnlineAllowance),
				l.Problem == "" && !l.Drained, share >= 0.95 && l.TooMany == 0, "%.0f/h = %.0f%%, %d × 429", l.PerHour, 100*share, l.TooMany)
		case "one-context-batch":
			drained := ""
			if l.Drained {
				drained = ", backlog drained: a floor, offer more"
			}
			add("≥ 100,000 invoices/hour for one context through batch", l.Problem == "" && (!l.Drained || l.PerHour >= 100_000), l.PerHour >= 100_000,
				"%.0f/h (%d offered%s), %d × 429; %d batch sessions, largest package %d invoices; bound by %s",
				l.PerHour, l.Offered, drained, l.TooMany, l.BatchSessions, l.LargestPackage, l.Bound)
		}
	}
	for _, m := range r.Memory {
		add(fmt.Sprintf("%s peak RSS ≤ 64 MiB (%s)", m.Worker, m.Job), m.PeakRSS > 0, m.WithinBound(), "%.1f MiB", mib(m.PeakRSS))
	}
	return out
}

// WriteMarkdown writes the report as Markdown; chart is the PNG's file name, if any.
func (r *Report) WriteMarkdown(w io.Writer, chart string) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	m := r.Machine
	mode := "full"
	if r.Options.Quick {
		mode = "quick"
	}
	p("# Benchmark results")
	p("")
	p("`go run ./cmd/ksef-bench` (%s run, seed %d) on %s, took %s. See docs/benchmarks.md for what each number means.",
		mode, r.Options.Seed, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Duration.Round(time.Second))
	p("")
	p("| machine | |")
	p("|---|---|")
	p("| CPUs | %d × %s |", m.CPUs, m.CPUModel)
	p("| memory | %s |", m.MemTotal)
	p("| Go | %s %s |", m.GoVersion, m.OS)
	p("| load average (1/5/15 min) | %s at the start, %s at the end (the machine is shared: other work ran at the same time) |", m.LoadBefore, m.LoadAfter)
	p("")
	if chart != "" {
		p("![throughput and latency](%s)", chart)
		p("")
	}
	if ts := r.Targets(); len(ts) > 0 {
		p("## Targets")
		p("")
		p("| goal | measured | |")
		p("|---|---|---|")
		for _, t := range ts {
			verdict := "**missed**"
			switch {
			case !t.Known:
				verdict = "not measured"
			case t.Met:
				verdict = "met"
			}
			p("| %s | %s | %s |", t.Goal, t.Measured, verdict)
		}
		p("")
	}
	if len(r.E2E) > 0 {
		p("## End to end: submitted → accepted")
		p("")
		p("%d invoices of 2–50 KB (1–200 lines) from %d sellers; limits off. Throughput is accepted invoices from the first publish to the last acceptance; latency from each publish to its invoice.accepted event. Paced runs offer %.0f invoices/s, so latency is not queueing.",
			r.Options.N, r.Options.Contexts, r.Options.PacedRate)
		p("")
		writeE2E(p, r.E2E)
		writeStages(p, r.E2E)
	}
	if len(r.Baselines) > 0 || r.Raw != nil {
		p("## Baselines (same run, same emulator)")
		p("")
		p("| baseline | KSeF latency | invoices | elapsed | invoices/s | pipeline speed-up |")
		p("|---|---|---:|---:|---:|---:|")
		for _, bl := range r.Baselines {
			speed := "–"
			for _, e := range r.E2E {
				if e.Latency == bl.Latency && !e.Visualize && e.Rate == 0 && e.Throughput > 0 {
					speed = fmt.Sprintf("%.0f×", e.Throughput/bl.Throughput)
				}
			}
			p("| one at a time (session, send, poll every 100 ms) | %s | %d | %s | %.2f | %s |", bl.Latency.Name, bl.Invoices, bl.Elapsed.Round(time.Millisecond), bl.Throughput, speed)
		}
		if raw := r.Raw; raw != nil {
			over := "–"
			for _, e := range r.E2E {
				if e.Name == "zero-latency" && e.Throughput > 0 {
					over = fmt.Sprintf("pipeline %.1f× slower", raw.Throughput/e.Throughput)
				}
			}
			p("| raw JetStream publish + consume + ack, same sizes (%.0f MB) | – | %d | %s | %.0f | %s |", float64(raw.Bytes)/1e6, raw.Messages, raw.Elapsed.Round(time.Millisecond), raw.Throughput, over)
		}
		p("")
	}
	if len(r.Scaling) > 0 {
		p("## Scaling: worker processes")
		p("")
		p("Sender and poller as separate processes (services/*), N replicas of each; NATS and the emulator in the bench process; local storage shared. No latency, no PDFs. CPU per invoice splits the worker processes' CPU time from the bench process's (the emulator, which validates and decrypts every invoice like KSeF, the NATS server, the publisher and the event tracker), from the first publish to the last outcome.")
		p("")
		writeE2E(p, r.Scaling)
		if c, at := workerCapacity(r.Scaling, r.Machine.CPUs); c > 0 {
			p("")
			p("At the workers' own cost per invoice (%s), %d CPUs given to the workers alone would carry about %.0f invoices/s; here they share the CPUs with the emulator and NATS.",
				cpuPerInvoice(at), r.Machine.CPUs, c)
		}
		p("")
	}
	if len(r.Memory) > 0 {
		p("## Memory: peak RSS of worker processes (VmHWM)")
		p("")
		p("| worker | job | elapsed | peak RSS | peak OS threads | ≤ 64 MiB |")
		p("|---|---|---:|---:|---:|---|")
		for _, mm := range r.Memory {
			ok := "yes"
			if !mm.WithinBound() {
				ok = "**no**"
			}
			job := mm.Job
			if mm.Problem != "" {
				job += " — " + mm.Problem
			}
			p("| %s | %s | %s | %.1f MiB | %d | %s |", mm.Worker, job, mm.Elapsed.Round(time.Millisecond), mib(mm.PeakRSS), mm.Threads, ok)
		}
		p("")
	}
	if len(r.Limited) > 0 {
		p("## Under KSeF's production limits (emulator enforcing them, accelerated clock)")
		p("")
		p("| run | contexts | mode | offered | KSeF hours (real) | sent | accepted | sent per KSeF hour | 429s | sessions |")
		p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
		for _, l := range r.Limited {
			mode := "online only"
			if l.Batch {
				mode = "online + batch"
			}
			name := l.Name
			if l.Drained {
				name += " (backlog drained before the hour ended)"
			}
			if l.Problem != "" {
				name += " (" + l.Problem + ")"
			}
			tooMany := fmt.Sprint(l.TooMany)
			if len(l.TooManyByOp) > 0 {
				var ops []string
				for op, n := range l.TooManyByOp {
					ops = append(ops, fmt.Sprintf("%s %d", op, n))
				}
				slices.Sort(ops)
				tooMany += " (" + strings.Join(ops, ", ") + ")"
			}
			p("| %s | %d | %s | %d | %.2f (%s, %.0f×) | %d | %d | %.0f | %s | %d |", name, l.Contexts, mode, l.Offered, l.ClockHours,
				l.Real.Round(100*time.Millisecond), l.Factor, l.Sent, l.Accepted, l.PerHour, tooMany, l.Sessions)
		}
		p("")
	}
	if len(r.GoBench) > 0 {
		p("## Per-stage Go benchmarks (`go test -bench -benchmem`, -benchtime %s)", r.Options.BenchTime)
		p("")
		p("| package | benchmark | ns/op | B/op | allocs/op | MB/s |")
		p("|---|---|---:|---:|---:|---:|")
		for _, g := range r.GoBench {
			mbs := ""
			if g.MBPerSec > 0 {
				mbs = fmt.Sprintf("%.1f", g.MBPerSec)
			}
			p("| %s | %s | %.0f | %d | %d | %s |", strings.TrimPrefix(g.Package, "github.com/ksef-pipeline/ksef-pipeline/"), g.Name, g.NsPerOp, g.BytesPerOp, g.AllocsPerOp, mbs)
		}
		p("")
	}
	if len(r.Problems) > 0 {
		p("## Problems")
		p("")
		for _, pr := range r.Problems {
			p("- %s", pr)
		}
		p("")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cpuPerInvoice is the CPU time per accepted invoice: the worker processes' and the bench
// process's (emulator, NATS server, publisher, tracker) apart when the workers ran as processes.
func cpuPerInvoice(e E2E) string {
	if e.Accepted == 0 || e.BenchCPU == 0 {
		return "–"
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(e.Accepted) }
	if e.Replicas > 0 {
		return fmt.Sprintf("%.2f workers + %.2f rest", per(e.WorkerCPU), per(e.BenchCPU))
	}
	return fmt.Sprintf("%.2f all", per(e.BenchCPU))
}

// workerCapacity is the invoices per second the worker processes' own CPU cost per invoice
// allows on cpus CPUs, from the scaling run with the most accepted invoices per worker CPU
// second; 0 when no run measured it.
func workerCapacity(runs []E2E, cpus int) (float64, E2E) {
	var best float64
	var at E2E
	for _, e := range runs {
		if e.Replicas == 0 || e.WorkerCPU <= 0 || e.Accepted == 0 {
			continue
		}
		if c := float64(cpus) * float64(e.Accepted) / e.WorkerCPU.Seconds(); c > best {
			best, at = c, e
		}
	}
	return best, at
}

func writeE2E(p func(string, ...any), runs []E2E) {
	p("| run | KSeF latency | PDF | workers | invoices | accepted | elapsed | invoices/s | p50 | p95 | p99 | added p50 / p99 | CPU ms per invoice | 429s |")
	p("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, e := range runs {
		pdf := "off"
		if e.Visualize {
			pdf = fmt.Sprintf("on (%.0f PDFs/s)", e.VisualizedThroughput)
		}
		workers := "in-process"
		if e.Replicas > 0 {
			workers = fmt.Sprintf("%d × process", e.Replicas)
		}
		added := "–"
		if e.Rate > 0 {
			a50, a99 := e.Added()
			added = signed(a50) + " / " + signed(a99)
		}
		name := e.Name
		if e.Rate > 0 {
			name += fmt.Sprintf(" (%.0f/s offered)", e.Rate)
		}
		if len(e.Problems) > 0 {
			name += " ⚠ " + strings.Join(e.Problems, "; ")
		}
		p("| %s | %s | %s | %s | %d | %d | %s | %.0f | %s | %s | %s | %s | %s | %d |", name, e.Latency.Name, pdf, workers, e.Invoices, e.Accepted,
			e.Elapsed.Round(time.Millisecond), e.Throughput, ms(e.P50), ms(e.P95), ms(e.P99), added, cpuPerInvoice(e), e.TooMany)
	}
	p("")
}

// writeStages splits the paced runs' latency: where the time goes, and the emulator's own share
// that each invoice's floor counts.
func writeStages(p func(string, ...any), runs []E2E) {
	var paced []E2E
	for _, e := range runs {
		if e.Rate > 0 && e.FloorP50 > 0 {
			paced = append(paced, e)
		}
	}
	if len(paced) == 0 {
		return
	}
	p("Where the paced runs' time goes (p50 / p99). Each invoice's floor is the send call's latency plus the emulator's own time from receiving the invoice to showing its outcome (its processing delay, or its checks when they take longer); *added* is each invoice's latency less its floor.")
	p("")
	p("| run | submitted → sent | sent → accepted | emulator's own time | floor p50 | added p50 / p99 | status calls per invoice |")
	p("|---|---:|---:|---:|---:|---:|---:|")
	for _, e := range paced {
		a50, a99 := e.Added()
		p("| %s | %s / %s | %s / %s | %s / %s | %s | %s / %s | %.2f |", e.Name, ms(e.ToSent.P50), ms(e.ToSent.P99),
			ms(e.ToAccepted.P50), ms(e.ToAccepted.P99), ms(e.Emulator.P50), ms(e.Emulator.P99), ms(e.FloorP50),
			signed(a50), signed(a99), e.StatusCalls)
	}
	p("")
}

func signed(d time.Duration) string {
	if d < 0 {
		return ms(d)
	}
	return "+" + ms(d)
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 10*time.Millisecond || d <= -10*time.Millisecond:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
