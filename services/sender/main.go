// Command sender runs the pipeline's sender worker alone, against external NATS, storage and KSeF
// configured by the environment. Its logic is in internal/sender; the wiring in internal/pipeline.
//
// Besides the pipeline's settings it reads its runtime's (memory.go): GOGC defaults to 50 here;
// a soft memory limit of 3/4 of KSEF_MEMORY_LIMIT, or of the cgroup's memory.max, unless
// GOMEMLIMIT is set; KSEF_PPROF_ADDR serves net/http/pprof (off by default).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	mem, err := memoryFromEnv(getenv, os.ReadFile)
	if err != nil {
		return err
	}
	mem.apply()
	log := zerolog.New(stderr).With().Timestamp().Str("service", pipeline.Sender).Logger()
	log.Info().Int("gc_percent", mem.GCPercent).Int64("memory_limit", mem.Limit).Msg("runtime memory settings (0: as GOGC, GOMEMLIMIT say)")
	if mem.Pprof != "" {
		addr, err := servePprof(mem.Pprof)
		if err != nil {
			return err
		}
		log.Info().Str("addr", addr.String()).Msg("serving net/http/pprof")
	}
	return pipeline.ServiceMain(ctx, pipeline.Sender, args, getenv, stdout, stderr)
}
