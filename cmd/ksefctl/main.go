// Command ksefctl is the command line of ksef-pipeline for integrators, operators and auditors:
// it submits invoices and queries, follows them to their outcomes, shows an invoice's whole
// history and copies its artifacts, reads the audit stream, handles dead letters and shows the
// workers' consumers. See docs/ksefctl.md; the logic is in internal/ctl.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "ksefctl:", msg)
		}
		os.Exit(ctl.ExitCode(err))
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "ksefctl")
	}
	return ctl.Run(ctx, args, ctl.Env{Getenv: getenv, Stdout: stdout, Stderr: stderr, Interactive: isTerminal(stderr)})
}

// isTerminal reports whether w is a character device (a terminal), where progress may redraw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
