package reliability

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
)

// envWorker makes the test binary run one worker instead of the tests (see workerMain).
const envWorker = "KSEF_RELIABILITY_WORKER"

var update = flag.Bool("update", false, "rewrite the results table in docs/reliability.md")

func TestMain(m *testing.M) {
	if name := os.Getenv(envWorker); name != "" {
		os.Exit(workerMain(name))
	}
	if spec := os.Getenv(envNATSNode); spec != "" {
		os.Exit(natsNodeMain(spec))
	}
	flag.Parse()
	code := m.Run()
	sharedMinIO.stop()
	os.Exit(code)
}

// workerMain is services/<name>'s main: the worker alone, every setting from the environment,
// a graceful drain on SIGTERM (SIGKILL, which the suite sends, allows none).
func workerMain(name string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := pipeline.ServiceMain(ctx, name, []string{name}, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 1
	}
	return 0
}
