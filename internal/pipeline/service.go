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

	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
)

// ServiceMain is the whole main of a standalone worker service (services/<name>): settings from
// the environment, connections, the worker, graceful drain when ctx ends.
func ServiceMain(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nRuns the pipeline's %s worker. Every setting comes from the environment\n"+
			"(KSEF_NATS_*, KSEF_STORAGE / KSEF_S3_*, KSEF_API_URL, KSEF_TOKENS[_FILE], KSEF_LIMITS, KSEF_SCHEMA_DIR, ...);\n"+
			"see the README. /metrics, /healthz and /readyz are served on KSEF_HTTP_ADDR (default %s; off: none);\n"+
			"traces go to OTEL_EXPORTER_OTLP_ENDPOINT when set (see docs/operations.md).\n", name, name, telemetry.DefaultHTTPAddr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	s, err := SettingsFromEnv(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	tcfg, err := telemetry.ConfigFromEnv(name, getenv)
	if err != nil {
		return err
	}
	log := zerolog.New(stderr).Level(s.LogLevel).With().Timestamp().Str("service", name).Logger()
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
