package fa3

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir returns ../shared/ksef relative to the repository root (the
// directory holding go.mod), skipping the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
	ksef := filepath.Join(dir, "..", "shared", "ksef")
	if _, err := os.Stat(ksef); err != nil {
		t.Skipf("shared KSeF material not found: %v", err)
	}
	return ksef
}

func schemaDir(t testing.TB) string {
	return filepath.Join(sharedDir(t), "official", "faktury", "schemy", "FA")
}

type sample struct {
	name string
	data []byte
}

func samples(t testing.TB, kind string) []sample {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "samples", kind)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".xml" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sample{e.Name(), b})
	}
	if len(out) == 0 {
		t.Fatalf("no samples in %s", dir)
	}
	return out
}

func readSample(t testing.TB, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "samples", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
