package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/procmem"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
)

// serviceGCPercent is a service's own GOGC default (absent: Go's 100). The sender's heap is mostly
// invoice bytes: documents held within its memory budget and, while one is sent, its encrypted,
// base64 and JSON copies. They are large, short-lived and pointer-free, so a collection costs
// little, while at 100 the heap grows to twice what was live at the last collection and a burst
// of sends doubles into the peak: 50 cut the peak RSS of the 100 MB batch benchmark by 12 MiB for
// about 2% more CPU in the collector.
func serviceGCPercent(name string) int {
	if name == Sender {
		return 50
	}
	return 0
}

// ServiceMain is the whole main of a standalone worker service (services/<name>): settings from
// the environment, connections, the worker, graceful drain when ctx ends.
func ServiceMain(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nRuns the pipeline's %s worker. Every setting comes from the environment\n"+
			"(KSEF_NATS_*, KSEF_STORAGE / KSEF_S3_*, KSEF_API_URL, KSEF_TOKENS[_FILE], KSEF_LIMITS, KSEF_SCHEMA_DIR, ...);\n"+
			"see the README. /metrics, /healthz and /readyz are served on KSEF_HTTP_ADDR (default %s; off: none);\n"+
			"traces go to OTEL_EXPORTER_OTLP_ENDPOINT when set; KSEF_MEMORY_LIMIT and KSEF_PPROF_ADDR set the Go\n"+
			"runtime's memory (see docs/operations.md).\n", name, name, telemetry.DefaultHTTPAddr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	mem, err := procmem.FromEnv(getenv, os.ReadFile, serviceGCPercent(name))
	if err != nil {
		return err
	}
	mem.Apply()
	getenv, hidden := WorkerEnv(name, getenv)
	s, err := SettingsFromEnv(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	s.NoKSeF = !CallsKSeF(name)
	s.Workers = []string{name}
	tcfg, err := telemetry.ConfigFromEnv(name, getenv)
	if err != nil {
		return err
	}
	log := zerolog.New(stderr).Level(s.LogLevel).With().Timestamp().Str("service", name).Logger()
	if len(hidden) > 0 {
		log.Warn().Strs("ignored", hidden).Msg("this worker calls no KSeF API: its KSeF token settings are ignored; give them only to the workers that call KSeF")
	}
	log.Info().Int("gc_percent", mem.GCPercent).Int64("memory_limit", mem.Limit).Msg("runtime memory settings (0: as GOGC, GOMEMLIMIT say)")
	if mem.Pprof != "" {
		addr, shutdown, err := procmem.ServePprof(mem.Pprof)
		if err != nil {
			return err
		}
		defer shutdown(context.WithoutCancel(ctx))
		log.Info().Str("addr", addr.String()).Msg("serving net/http/pprof")
	}
	tel, err := telemetry.New(ctx, tcfg)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the last spans even though ctx is done.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn().Err(err).Msg("flushing traces failed")
		}
	}()
	if tcfg.HTTPAddr != "" {
		// Served before connecting: liveness holds while NATS or storage are still coming up,
		// readiness does not.
		srv, err := tel.Start(tcfg.HTTPAddr, log)
		switch {
		case err != nil && tcfg.HTTPAddrDefault:
			// Another service on this host has the default port; one that was given an address
			// must have it.
			log.Error().Err(err).Msg("NO /metrics, /healthz, /readyz: set " + telemetry.EnvHTTPAddr + " to a free address (or off)")
		case err != nil:
			return err
		default:
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			log.Info().Str("addr", srv.Addr().String()).Msg("serving /metrics, /healthz and /readyz")
		}
	}
	rt, err := OpenWithTelemetry(ctx, s, log, tel)
	if err != nil {
		return err
	}
	defer rt.Close()
	log.Info().Str("nats", s.NATS.URL).Str("ksef", s.KSeF.APIURL).Bool("tracing", tel.Tracing.Enabled()).Msg("started")
	err = rt.Run(ctx, name)
	log.Info().Err(err).Msg("stopped")
	return err
}
