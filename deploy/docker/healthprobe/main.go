// Command healthprobe is the container health check of ksef-pipeline's
// images. The runtime image has no shell, curl or wget, so Docker's
// HEALTHCHECK runs this static binary instead: it GETs one URL and exits 0
// on a 2xx answer, 1 otherwise.
//
// The URL is the first argument, else $KSEF_HEALTHCHECK_URL, else
// http://127.0.0.1<port of $KSEF_HTTP_ADDR>/healthz (the workers' health
// port, ":9090" by default).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
)

// timeout bounds one probe; Docker kills a health check after its own
// --timeout anyway, this only makes the failure message readable.
const timeout = 2 * time.Second

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "healthprobe:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if buildinfo.Requested(args) {
		return buildinfo.Print(stdout, "healthprobe")
	}
	target, err := probeURL(args, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Drain a little so the status line is all that matters; health bodies
	// are tiny.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", target, resp.Status)
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, resp.Status)
	return nil
}

// probeURL picks the URL to probe (see the package comment).
func probeURL(args []string, getenv func(string) string) (string, error) {
	switch {
	case len(args) > 1:
		return "", errors.New("usage: healthprobe [URL]")
	case len(args) == 1:
		return args[0], nil
	case getenv("KSEF_HEALTHCHECK_URL") != "":
		return getenv("KSEF_HEALTHCHECK_URL"), nil
	}
	addr := getenv("KSEF_HTTP_ADDR")
	if addr == "" {
		addr = ":9090"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("KSEF_HTTP_ADDR %q: %w", addr, err)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz", nil
}
