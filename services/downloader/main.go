// Command downloader runs the pipeline's downloader worker: it consumes query.requested, runs the
// invoice query in KSeF, stores every invoice and result part, and publishes invoice.downloaded
// and query.completed. Its logic is in internal/downloader; this file only wires it.
//
// Settings come from the environment: NATS (KSEF_NATS_*, natsx), storage (KSEF_STORAGE,
// KSEF_S3_*, storage), KSeF (KSEF_API_URL, KSEF_TOKENS, KSEF_LIMITS, ..., ksefconn) and the
// downloader's own (KSEF_DOWNLOADER_*, downloader.SettingsFromEnv).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/downloader"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// LimiterBucket is the KV bucket of the shared KSeF request limiter: every worker of every
// context counts its requests there, so it must be the same in all services.
const LimiterBucket = "ksef_ratelimit"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "downloader:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("downloader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: downloader [-log-level level]\n\n"+
			"Consumes query.requested and downloads the invoices from KSeF. Configured by the\n"+
			"environment: KSEF_NATS_*, KSEF_STORAGE / KSEF_S3_*, KSEF_API_URL, KSEF_TOKENS,\n"+
			"KSEF_LIMITS and KSEF_DOWNLOADER_* (see internal/downloader).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("service", "downloader").Logger()
	ctx = log.WithContext(ctx)

	natsCfg, err := natsx.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	storeCfg, err := storage.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	ksefCfg, err := ksefconn.SettingsFromEnv(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	settings, err := downloader.SettingsFromEnv(getenv)
	if err != nil {
		return err
	}
	settings.Layout = storage.Layout{Buckets: storeCfg.Buckets}
	if err := os.MkdirAll(settings.TempDir, 0o700); err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}

	store, err := storage.Open(storeCfg)
	if err != nil {
		return err
	}
	b := settings.Layout.Buckets
	if err := store.EnsureBuckets(ctx, b.Invoices, b.QueryParts); err != nil {
		return err
	}
	nc, js, err := natsx.Connect(ctx, natsCfg)
	if err != nil {
		return err
	}
	defer nc.Drain()
	if _, err := natsx.EnsureStreams(ctx, js, natsCfg); err != nil {
		return err
	}
	marks, err := natsx.EnsureKV(ctx, js, settings.MarksBucket, 0)
	if err != nil {
		return err
	}
	limits, err := natsx.EnsureKV(ctx, js, LimiterBucket, 2*time.Hour)
	if err != nil {
		return err
	}
	clients, err := ksefconn.NewClients(ksefCfg, natsx.NewCAS(limits))
	if err != nil {
		return err
	}
	d, err := downloader.New(settings.Config, downloader.Deps{
		Clients: func(ctx context.Context, nip string) (downloader.KSeF, error) {
			c, err := clients.For(ctx, nip)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Store:     store,
		Publisher: natsx.NewPublisher(js, natsCfg),
		Marks:     natsx.NewCAS(marks),
	})
	if err != nil {
		return err
	}
	log.Info().Int("contexts", len(ksefCfg.Tokens)).Str("api", ksefCfg.APIURL).Msg("downloader starting")
	return worker.Run(ctx, js, worker.Config{
		Name:        downloader.WorkerName,
		Subjects:    []string{natsCfg.Subjects().QueryRequested()},
		NATS:        natsCfg,
		Concurrency: settings.Concurrency,
	}, d.Handler())
}
