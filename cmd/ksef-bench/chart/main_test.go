package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
)

// TestChart draws the chart of a small report written as ksef-bench writes results.json.
func TestChart(t *testing.T) {
	rep := bench.Report{
		Machine: bench.Machine{CPUs: 2},
		E2E: []bench.E2E{
			{Name: "zero-latency", Latency: bench.ZeroLatency, Invoices: 10, Accepted: 10, Throughput: 120,
				P50: 40 * time.Millisecond, P95: 90 * time.Millisecond, P99: 120 * time.Millisecond},
			{Name: "ksef-latency", Latency: bench.KSeFLatency, Invoices: 10, Accepted: 10, Throughput: 30, Rate: 5,
				P50: 2300 * time.Millisecond, P95: 2600 * time.Millisecond, P99: 2900 * time.Millisecond},
		},
		Scaling: []bench.E2E{{Name: "2-replicas", Latency: bench.ZeroLatency, Replicas: 2, Throughput: 200}},
	}
	dir := t.TempDir()
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"chart", dir}, os.Getenv, &stdout, &stdout); err != nil {
		t.Fatal(err)
	}
	png, err := os.ReadFile(filepath.Join(dir, "results.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("results.png is not a PNG (%d bytes)", len(png))
	}
	if !strings.Contains(stdout.String(), "results.png") {
		t.Errorf("stdout: %q", stdout.String())
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"chart"}, os.Getenv, &out, &out); err == nil {
		t.Error("no directory: no error")
	}
	if err := run(t.Context(), []string{"chart", t.TempDir()}, os.Getenv, &out, &out); err == nil {
		t.Error("no results.json: no error")
	}
	out.Reset()
	if err := run(t.Context(), []string{"chart", "--version"}, os.Getenv, &out, &out); err != nil || !strings.HasPrefix(out.String(), "ksef-bench-chart ") {
		t.Errorf("--version: %v, %q", err, out.String())
	}
}
