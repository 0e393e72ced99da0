// Command sender runs the pipeline's sender worker alone, against external NATS, storage and KSeF
// configured by the environment. Its logic is in internal/sender; the wiring in internal/pipeline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
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
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "sender")
	}
	return pipeline.ServiceMain(ctx, pipeline.Sender, args, getenv, stdout, stderr)
}
