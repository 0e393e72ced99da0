// Command ksef-pipeline runs the whole pipeline in one process for a newcomer: a real NATS server
// with JetStream, storage in a local directory, the KSeF emulator and the four workers.
//
//	ksef-pipeline demo   submit invoices, follow them to KSeF numbers, UPOs and PDFs, query them back
//	ksef-pipeline run    run until interrupted (publish your own events on the printed NATS URL)
//
// Every setting of the workers (see the README) is read from the environment; flags override
// the few a newcomer changes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ksef-pipeline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "ksef-pipeline")
	}
	cmd := "demo"
	if len(args) > 1 && (args[1] == "run" || args[1] == "demo") {
		cmd, args = args[1], args[1:]
	}
	fs := flag.NewFlagSet("ksef-pipeline "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "directory for NATS, objects and the emulator (default: a new temporary directory)")
	invoices := fs.Int("invoices", 12, "demo: how many invoices to submit")
	timeout := fs.Duration("timeout", 5*time.Minute, "demo: give up after this long")
	external := fs.Bool("external-ksef", false, "use the KSeF API at KSEF_API_URL instead of the in-process emulator")
	workers := fs.String("workers", "all", "workers to run: all, or a comma-separated list of sender, poller, downloader, visualizer")
	httpAddr := fs.String("http-addr", getenv(telemetry.EnvHTTPAddr), "serve /metrics, /healthz and /readyz on this address, e.g. 127.0.0.1:9090 (default: none)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	names, err := pipeline.ParseWorkers(*workers)
	if err != nil {
		return err
	}
	settings, err := pipeline.SettingsFromEnv(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).Level(settings.LogLevel).With().Timestamp().Logger()
	if cmd == "demo" && getenv(pipeline.EnvLogLevel) == "" {
		log = log.Level(zerolog.WarnLevel) // the demo prints its own progress
	}
	if *dataDir == "" {
		if *dataDir, err = os.MkdirTemp("", "ksef-pipeline-"); err != nil {
			return err
		}
	}
	if len(settings.KSeF.Tokens) == 0 {
		settings.KSeF.Tokens = demo.Tokens()
	}
	if cmd == "demo" && settings.SessionCloseIdle == 0 {
		settings.SessionCloseIdle = 2 * time.Second // UPOs promptly, for the report
	}
	opts := embedded.Options{Dir: *dataDir, Settings: settings, Log: log}
	if !*external {
		opts.Emulator = &emulator.Config{ProcessingDelay: 300 * time.Millisecond, StorageDelay: 500 * time.Millisecond,
			Logger: &log, Limits: emulator.LimitConfig{Disabled: settings.KSeF.Limits == "off", Multiplier: limitMultiplier(settings)}}
	}
	e, err := embedded.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(stdout, "NATS:     %s (JetStream in %s)\n", e.NATS.ClientURL(), filepath.Join(*dataDir, "nats"))
	if e.EmulatorURL != "" {
		fmt.Fprintf(stdout, "KSeF:     %s (emulator; API docs at %s/docs)\n", e.EmulatorURL, e.EmulatorURL)
	}
	fmt.Fprintf(stdout, "Objects:  %s\n", e.ObjectsDir)
	if *httpAddr != "" && *httpAddr != "off" {
		tel := e.Runtime.Telemetry
		if e.Emulator != nil {
			tel.Metrics.Registry().MustRegister(e.Emulator.Collector())
		}
		srv, err := tel.Start(*httpAddr, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		fmt.Fprintf(stdout, "Metrics:  %s/metrics (and /healthz, /readyz)\n", srv.URL())
	}
	if !e.Runtime.Validator.SchemaValidated() {
		fmt.Fprintf(stdout, "WARNING:  no FA(3) schema (set %s): invoices are checked structurally only\n", pipeline.EnvSchemaDir)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(runCtx, names...) }()

	if cmd == "run" {
		fmt.Fprintln(stdout, "Running; publish invoice.submitted events to the NATS URL above. Ctrl-C stops.")
		err := <-runErr
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	res, err := demo.Run(ctx, e, demo.Options{Invoices: *invoices, Timeout: *timeout, Out: stdout})
	cancel()
	if werr := <-runErr; werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if res.Rejected > 0 {
		return errors.New("some invoices were rejected")
	}
	fmt.Fprintf(stdout, "\nEverything is kept in %s\n", *dataDir)
	return nil
}

// limitMultiplier: the demo's emulator enforces the same limits the pipeline keeps to.
func limitMultiplier(s pipeline.Settings) float64 {
	switch s.KSeF.Limits {
	case "test":
		return 10 * s.KSeF.LimitMultiplier
	default:
		return s.KSeF.LimitMultiplier
	}
}
