package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog"
)

// ServiceMain is the whole main of a standalone worker service (services/<name>): settings from
// the environment, connections, the worker, graceful drain when ctx ends.
func ServiceMain(ctx context.Context, name string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nRuns the pipeline's %s worker. Every setting comes from the environment\n"+
			"(KSEF_NATS_*, KSEF_STORAGE / KSEF_S3_*, KSEF_API_URL, KSEF_TOKENS[_FILE], KSEF_LIMITS, KSEF_SCHEMA_DIR, ...);\n"+
			"see the README.\n", name, name)
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
	log := zerolog.New(stderr).Level(s.LogLevel).With().Timestamp().Str("service", name).Logger()
	rt, err := Open(ctx, s, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	log.Info().Str("nats", s.NATS.URL).Str("ksef", s.KSeF.APIURL).Msg("started")
	err = rt.Run(ctx, name)
	log.Info().Err(err).Msg("stopped")
	return err
}
