package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// GoBench is one line of `go test -bench -benchmem` output.
type GoBench struct {
	Package     string
	Name        string
	Iterations  int64
	NsPerOp     float64
	BytesPerOp  int64
	AllocsPerOp int64
	MBPerSec    float64
}

// goBenchSet are the per-stage benchmarks of the hot paths: encryption and hashing, event
// encoding, status handling, validation and generation, rendering, the limiter, the emulator.
var goBenchSet = []struct{ pkg, pattern string }{
	{"./pkg/crypto", "."},
	{"./pkg/events", "."},
	{"./pkg/fa3", "Validate$|Parse|Generate"},
	{"./pkg/visualize", "."},
	{"./internal/poller", "."},
	{"./internal/ratelimit", "."},
	{"./internal/emulator", "SendInvoice"},
}

// runGoBenches runs the per-stage benchmarks and parses their results.
func (b *Bench) runGoBenches(ctx context.Context) ([]GoBench, []string) {
	var out []GoBench
	var problems []string
	for _, s := range goBenchSet {
		b.logf("go test -bench %q %s ...", s.pattern, s.pkg)
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", s.pattern, "-benchmem", "-benchtime", b.o.BenchTime, s.pkg)
		cmd.Dir = b.o.RepoRoot
		cmd.Env = append(cmd.Environ(), "KSEF_SCHEMA_DIR="+b.o.SchemaDir)
		raw, err := cmd.CombinedOutput()
		got := parseGoBench(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v: %s", s.pkg, err, lastLine(raw)))
		}
		out = append(out, got...)
	}
	return out, problems
}

// parseGoBench reads benchmark lines (and the pkg: lines naming their package).
func parseGoBench(raw []byte) []GoBench {
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		gb := GoBench{Package: pkg, Name: f[0]}
		var err error
		if gb.Iterations, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			switch unit {
			case "ns/op":
				gb.NsPerOp, _ = strconv.ParseFloat(v, 64)
			case "B/op":
				gb.BytesPerOp, _ = strconv.ParseInt(v, 10, 64)
			case "allocs/op":
				gb.AllocsPerOp, _ = strconv.ParseInt(v, 10, 64)
			case "MB/s":
				gb.MBPerSec, _ = strconv.ParseFloat(v, 64)
			}
		}
		out = append(out, gb)
	}
	return out
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
