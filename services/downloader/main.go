// Command downloader runs the pipeline's downloader worker alone, against external NATS, storage
// and KSeF configured by the environment: it consumes query.requested, runs the invoice query in
// KSeF, stores every invoice and result part, and publishes invoice.downloaded and
// query.completed. Its logic is in internal/downloader; the wiring in internal/pipeline.
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
		fmt.Fprintln(os.Stderr, "downloader:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "downloader")
	}
	return pipeline.ServiceMain(ctx, pipeline.Downloader, args, getenv, stdout, stderr)
}
