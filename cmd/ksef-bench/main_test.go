package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// TestQuickRun runs the tool end to end with tiny sizes, so that it keeps working: it must
// produce the Markdown table and the JSON the chart is drawn from (cmd/ksef-bench/chart, tested
// there). No speed is asserted.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts whole pipelines")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"ksef-bench", "--quick", "--only", "e2e,limits",
		"--runs", "zero-latency,paced-zero-latency", "--n", "12", "--contexts", "2", "--paced-n", "4", "--baseline-n", "1",
		"--ksef-hour", "3s", "--limit-online", "15", "--limit-batch", "20", "--many-contexts", "3",
		"--schema-dir", testenv.SchemaDir(t), "--work-dir", t.TempDir(), "--out", out}
	if err := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("ksef-bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## End to end", "| zero-latency |", "| paced-zero-latency (20/s offered) |",
		"one at a time", "raw JetStream", "## Under KSeF's production limits", "| one-context-online", "## Targets"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "## Problems") {
		t.Errorf("the run had problems:\n%s", md)
	}
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"E2E"`)) {
		t.Errorf("results.json has no E2E runs:\n%s", js)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"ksef-bench", "--only", "nonsense"},
		{"ksef-bench", "--replicas", "1,x"},
		{"ksef-bench", "--no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
