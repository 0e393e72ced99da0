// Command chart draws the PNG chart of a ksef-bench run from its results.json:
//
//	cd cmd/ksef-bench/chart && go run . ../../../results
//
// reads results/results.json and writes results/results.png beside it (results.md links it).
// It is a module of its own so that the main module does not require gonum/plot.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, _ func(string) string, stdout, _ io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "ksef-bench-chart")
	}
	if len(args) != 2 {
		return errors.New("usage: chart RESULTS_DIR (the directory of ksef-bench's results.json)")
	}
	dir := args[1]
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "results.json"), err)
	}
	out := filepath.Join(dir, "results.png")
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	err = writeChart(f, &rep)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chart: %s\n", out)
	return nil
}
