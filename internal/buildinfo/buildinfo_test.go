package buildinfo

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/ksef-pipeline/ksef-pipeline", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "3f2a9c1d0e7b5a4c3b2a1f0e9d8c7b6a5f4e3d2c"},
			{Key: "vcs.time", Value: "2026-12-07T21:50:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	i := FromBuildInfo(bi, true)
	want := Info{Path: "github.com/ksef-pipeline/ksef-pipeline", Version: "v1.2.3",
		Revision: "3f2a9c1d0e7b5a4c3b2a1f0e9d8c7b6a5f4e3d2c", Time: "2026-12-07T21:50:00Z", Modified: true, GoVersion: "go1.26.8"}
	if i != want {
		t.Fatalf("FromBuildInfo = %+v, want %+v", i, want)
	}
	got := i.String("sender")
	const line = "sender v1.2.3 revision 3f2a9c1d0e7b5a4c3b2a1f0e9d8c7b6a5f4e3d2c, 2026-12-07T21:50:00Z, modified; go1.26.8; github.com/ksef-pipeline/ksef-pipeline"
	if got != line {
		t.Fatalf("String = %q, want %q", got, line)
	}
}

func TestNoBuildInfo(t *testing.T) {
	// A binary built without VCS stamping (or without build info at all) says so.
	if got, want := FromBuildInfo(nil, false).String("poller"), "poller unknown revision unknown; unknown"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "m", Version: "(devel)"}}
	if got, want := FromBuildInfo(bi, true).String("ksefctl"), "ksefctl (devel) revision unknown; go1.26.8; m"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestRequested(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{nil, false},
		{[]string{"--version", "x"}, false},
		{[]string{"run", "--version"}, false},
		{[]string{"--versions"}, false},
	} {
		if got := Requested(c.args); got != c.want {
			t.Errorf("Requested(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestPrint reads this test binary's own build information: the line names the command and the
// toolchain that built it.
func TestPrint(t *testing.T) {
	var b bytes.Buffer
	if err := Print(&b, "ksef-emulator"); err != nil {
		t.Fatal(err)
	}
	line := b.String()
	if !strings.HasPrefix(line, "ksef-emulator ") || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("Print wrote %q", line)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build information in the test binary")
	}
	if !strings.Contains(line, bi.GoVersion) {
		t.Errorf("%q lacks the Go version %s", line, bi.GoVersion)
	}
}
