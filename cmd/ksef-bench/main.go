// Command ksef-bench measures the pipeline against the in-process KSeF emulator and writes the
// results (a Markdown table and the raw numbers as JSON, from which cmd/ksef-bench/chart draws a
// PNG chart) to a directory. See docs/benchmarks.md.
//
//	go run ./cmd/ksef-bench                 full run (about 20 minutes on 2 cores)
//	go run ./cmd/ksef-bench --quick         CI-sized run
//	go run ./cmd/ksef-bench --only e2e --n 2000 --cpuprofile cpu.pprof
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ksef-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "ksef-bench")
	}
	fs := flag.NewFlagSet("ksef-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.BoolVar(&o.Quick, "quick", false, "CI-sized run (small N, short KSeF hour, no per-stage benchmarks unless --only names them); flags below override its sizes")
	fs.IntVar(&o.N, "n", 0, "invoices per end-to-end run (default 10000; quick 150)")
	fs.IntVar(&o.Contexts, "contexts", 0, "seller contexts of the end-to-end runs (default 10; quick 4)")
	fs.IntVar(&o.PacedN, "paced-n", 0, "invoices of the paced latency runs (default 400; quick 30)")
	fs.Float64Var(&o.PacedRate, "paced-rate", 0, "offered load of the paced runs, invoices/s (default 20)")
	fs.IntVar(&o.BaselineN, "baseline-n", 0, "invoices sent one at a time by the baseline (default 20; quick 3)")
	replicas := fs.String("replicas", "", "worker replicas of the scaling runs (default 1,2,4; quick 1,2)")
	fs.IntVar(&o.ScalingN, "scaling-n", 0, "invoices per scaling run (default 3000; quick 100)")
	batchMB := fs.Int("batch-part-mb", 0, "the sender's batch part in the memory run, MB (default 100; quick 10)")
	fs.DurationVar(&o.KSeFHour, "ksef-hour", 0, "real time of one KSeF hour under the limits (default 2m; quick 10s)")
	fs.IntVar(&o.LimitOnline, "limit-online", 0, "invoices offered to one context, online only (default 360; quick 200)")
	fs.IntVar(&o.LimitBatch, "limit-batch", 0, "invoices offered to one context with batch sessions (default 130000; quick 500)")
	fs.DurationVar(&o.BatchHour, "batch-hour", 0, "real time of the KSeF hour of the one-context-batch run (default 12m; quick 10s)")
	fs.IntVar(&o.ManyContexts, "many-contexts", 0, "contexts of the many-contexts run (default 1000; quick 50)")
	fs.IntVar(&o.PerContext, "per-context", 0, "invoices per context in the many-contexts run (default 3; quick 1)")
	fs.StringVar(&o.BenchTime, "benchtime", "", "go test -benchtime of the per-stage benchmarks (default 1s; quick 100ms)")
	fs.DurationVar(&o.Timeout, "timeout", 0, "longest wait for one run's invoices (default 10m; quick 2m)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the generated invoices")
	only := fs.String("only", "", "comma-separated sections to run: "+strings.Join(bench.Sections, ","))
	runs := fs.String("runs", "", "comma-separated end-to-end runs to do (default all): zero-latency, zero-latency+pdf, ksef-latency, ksef-latency+pdf, paced-zero-latency, paced-ksef-latency")
	fs.StringVar(&o.SchemaDir, "schema-dir", getenv("KSEF_SCHEMA_DIR"), "FA(3) XSD directory (default $KSEF_SCHEMA_DIR, else ../shared/ksef/official/faktury/schemy/FA beside the repository)")
	out := fs.String("out", "results", "directory for results.md and results.json (cmd/ksef-bench/chart draws results.png from results.json)")
	fs.StringVar(&o.Dir, "work-dir", "", "working directory (default a temporary one, removed at the end)")
	cpuProfile := fs.String("cpuprofile", "", "write the bench process's CPU profile (the in-process pipeline) here")
	memProfile := fs.String("memprofile", "", "write the bench process's allocation profile here at the end")
	verbose := fs.Bool("v", false, "show the pipeline's warnings")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *replicas != "" {
		for _, s := range strings.Split(*replicas, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return fmt.Errorf("--replicas: want positive integers, got %q", s)
			}
			o.Replicas = append(o.Replicas, n)
		}
	}
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			s = strings.TrimSpace(s)
			if !contains(bench.Sections, s) {
				return fmt.Errorf("--only: unknown section %q (want %s)", s, strings.Join(bench.Sections, ","))
			}
			o.Only = append(o.Only, s)
		}
	}
	if *runs != "" {
		o.Runs = strings.Split(*runs, ",")
	}
	o.BatchPart = int64(*batchMB) * 1_000_000
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if o.SchemaDir == "" {
		if root, err := findRoot(wd); err == nil {
			o.SchemaDir = filepath.Join(root, "..", "shared", "ksef", "official", "faktury", "schemy", "FA")
		}
	}
	o.Progress = stdout
	o.Log = zerolog.Nop()
	if *verbose {
		o.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, o)
	if *memProfile != "" {
		if f, ferr := os.Create(*memProfile); ferr == nil {
			runtime.GC()
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if rep == nil {
		return err
	}
	if werr := write(rep, *out); werr != nil {
		return errors.Join(err, werr)
	}
	fmt.Fprintf(stdout, "\nresults: %s\nchart: cd cmd/ksef-bench/chart && go run . %s\n", filepath.Join(*out, "results.md"), absOr(*out))
	return err
}

// write puts results.md and results.json into dir. The chart (results.png, which results.md
// links) is drawn from results.json by cmd/ksef-bench/chart, a module of its own; an older chart
// is removed so that results.md never shows another run's.
func write(rep *bench.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "results.png")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	md, err := os.Create(filepath.Join(dir, "results.md"))
	if err != nil {
		return err
	}
	err = rep.WriteMarkdown(md, "results.png")
	if cerr := md.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644)
}

// absOr is dir made absolute, or dir itself when it cannot be.
func absOr(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}

func findRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
