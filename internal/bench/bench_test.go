package bench

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 0.5, 3 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 0.95, 100 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 0.5, 50 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestNIP(t *testing.T) {
	pattern := regexp.MustCompile(`^[1-9]((\d[1-9])|([1-9]\d))\d{7}$`) // the XSD's TNrNIP
	weights := [9]int{6, 5, 7, 2, 3, 4, 5, 6, 7}
	seen := map[string]bool{}
	for i := range 2000 {
		n := NIP(i)
		if !pattern.MatchString(n) {
			t.Fatalf("NIP(%d) = %s does not match the schema's pattern", i, n)
		}
		sum := 0
		for k := range 9 {
			sum += int(n[k]-'0') * weights[k]
		}
		if int(n[9]-'0') != sum%11 {
			t.Fatalf("NIP(%d) = %s has a wrong check digit", i, n)
		}
		if seen[n] {
			t.Fatalf("NIP(%d) = %s repeats", i, n)
		}
		seen[n] = true
	}
}

func TestGenerator(t *testing.T) {
	issue := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	g := NewGenerator(42, buyer, issue)
	a, err := g.Many(40, func(i int) string { return NIP(i % 3) })
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewGenerator(42, buyer, issue).Many(40, func(i int) string { return NIP(i % 3) })
	if err != nil {
		t.Fatal(err)
	}
	v, err := fa3.NewValidator(testenv.SchemaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ids := map[string]bool{}
	minSize, maxSize := 1<<30, 0
	for i, inv := range a {
		if string(inv.XML) != string(b[i].XML) {
			t.Fatalf("invoice %d differs between two generators with the same seed", i)
		}
		if ids[inv.Seller+inv.ID] {
			t.Fatalf("invoice number %s of %s repeats", inv.ID, inv.Seller)
		}
		ids[inv.Seller+inv.ID] = true
		res, err := v.Validate(context.Background(), inv.XML)
		if err != nil {
			t.Fatalf("invoice %d is not valid FA(3): %v", i, err)
		}
		if err := fa3.CheckSemantics(res.Invoice); err != nil {
			t.Fatalf("invoice %d: %v", i, err)
		}
		if res.Invoice.SellerNIP() != inv.Seller || res.Invoice.BuyerNIP() != buyer {
			t.Fatalf("invoice %d: seller %s buyer %s", i, res.Invoice.SellerNIP(), res.Invoice.BuyerNIP())
		}
		minSize, maxSize = min(minSize, len(inv.XML)), max(maxSize, len(inv.XML))
	}
	if minSize < 2000 || maxSize > 52000 || maxSize-minSize < 20000 {
		t.Errorf("sizes span %d..%d bytes, want a spread within 2..50 KB", minSize, maxSize)
	}
	c, _ := NewGenerator(43, buyer, issue).Invoice(NIP(0), 0)
	if string(c.XML) == string(a[0].XML) {
		t.Error("another seed gave the same invoice")
	}
}

func TestClock(t *testing.T) {
	c := NewClock(1000)
	t0 := c.Now()
	time.Sleep(20 * time.Millisecond)
	if d := c.Now().Sub(t0); d < 15*time.Second || d > 5*time.Minute {
		t.Errorf("20 ms of real time were %v of clock time at 1000x", d)
	}
	before := c.Now()
	c.Restart()
	if c.Now().Before(before) {
		t.Error("Restart moved the clock back")
	}
	if e := c.Elapsed(); e > 10*time.Second {
		t.Errorf("Elapsed right after Restart = %v", e)
	}
	start := time.Now()
	if err := c.Sleep(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if real := time.Since(start); real > time.Second {
		t.Errorf("sleeping 10 s of clock time took %v", real)
	}
}

func TestParseGoBench(t *testing.T) {
	raw := []byte(`goos: linux
pkg: github.com/ksef-pipeline/ksef-pipeline/pkg/crypto
BenchmarkEncryptWriter-2   	     945	   1242556 ns/op	 843.90 MB/s	   33888 B/op	       4 allocs/op
BenchmarkSHA256Base64/1KiB-2         	 1348244	       881.0 ns/op	1162.33 MB/s	      96 B/op	       2 allocs/op
PASS
pkg: github.com/ksef-pipeline/ksef-pipeline/pkg/events
BenchmarkEncode-2   	  362218	      3310 ns/op	    2704 B/op	      26 allocs/op
--- FAIL: BenchmarkBroken
`)
	got := parseGoBench(raw)
	want := []GoBench{
		{Package: "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto", Name: "BenchmarkEncryptWriter-2", Iterations: 945, NsPerOp: 1242556, BytesPerOp: 33888, AllocsPerOp: 4, MBPerSec: 843.9},
		{Package: "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto", Name: "BenchmarkSHA256Base64/1KiB-2", Iterations: 1348244, NsPerOp: 881, BytesPerOp: 96, AllocsPerOp: 2, MBPerSec: 1162.33},
		{Package: "github.com/ksef-pipeline/ksef-pipeline/pkg/events", Name: "BenchmarkEncode-2", Iterations: 362218, NsPerOp: 3310, BytesPerOp: 2704, AllocsPerOp: 26},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d benchmarks, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("benchmark %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBatchParts(t *testing.T) {
	log := `{"level":"warn","message":"something else","bytes":999999999}
{"level":"info","session_id":"s1","invoices":200,"bytes":120000000,"parts":2,"message":"batch package sent"}
{"level":"info","session_id":"s2","invoices":10,"bytes":5000000,"parts":1,"message":"batch package sent"}
not json`
	path := filepath.Join(t.TempDir(), "sender.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	largest, parts := batchParts(path)
	if largest != 100_000_000 || parts != 2 {
		t.Errorf("batchParts = %d bytes, %d parts; want the 100 MB cap and 2", largest, parts)
	}
	if l, p := batchParts(filepath.Join(t.TempDir(), "missing.log")); l != 0 || p != 0 {
		t.Errorf("a missing log gave %d, %d", l, p)
	}
}

func TestTargets(t *testing.T) {
	r := &Report{Machine: Machine{CPUs: 2},
		E2E: []E2E{{Name: "zero-latency", Accepted: 10, Throughput: 1200},
			{Name: "paced-zero-latency", Latency: ZeroLatency, Rate: 20, Accepted: 10, P50: 3 * time.Millisecond, P99: 30 * time.Millisecond}},
		Limited: []Limited{{Name: "one-context-online", PerHour: 175, TooMany: 0}, {Name: "one-context-batch", PerHour: 50_000, Drained: true}},
		Memory:  []Memory{{Worker: "sender", PeakRSS: 70 << 20}},
	}
	got := map[string]Target{}
	for _, tg := range r.Targets() {
		got[tg.Goal[:12]] = tg
	}
	check := func(prefix string, known, met bool) {
		t.Helper()
		tg, ok := got[prefix[:12]]
		if !ok {
			t.Fatalf("no target starting %q", prefix)
		}
		if tg.Known != known || tg.Met != met {
			t.Errorf("%q: known %v met %v, want %v %v (%s)", tg.Goal, tg.Known, tg.Met, known, met, tg.Measured)
		}
	}
	check("≥ 1,000 invoices/s", true, true)
	check("pipeline adds ≤ 5 ms", true, false) // p99 30 ms > 25 ms
	check("production limits: ≥ 95%", true, true)
	check("≥ 100,000 invoices/hour", false, false) // drained below the goal: unknown
	check("sender peak RSS", true, false)
}

// TestProcCPU reads this process's CPU time from /proc/<pid>/stat while it burns some, and
// checks it against getrusage, the kernel's other account of the same time.
func TestProcCPU(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := selfCPU() + 300*time.Millisecond; selfCPU() < deadline; {
		for i := range 1_000_000 {
			_ = i * i
		}
	}
	after, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got < 200*time.Millisecond {
		t.Errorf("/proc/self/stat counted %s for ≥ 300 ms of CPU", got)
	}
	if self := selfCPU(); after > self+clockTick {
		t.Errorf("/proc/self/stat says %s, getrusage only %s", after, self)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestCPUPerInvoice(t *testing.T) {
	for _, tc := range []struct {
		e    E2E
		want string
	}{
		{E2E{Accepted: 0, BenchCPU: time.Second}, "–"},
		{E2E{Accepted: 1000, BenchCPU: 0}, "–"},
		{E2E{Accepted: 1000, BenchCPU: 5 * time.Second}, "5.00 all"},
		{E2E{Accepted: 1000, Replicas: 2, WorkerCPU: 2 * time.Second, BenchCPU: 3500 * time.Millisecond}, "2.00 workers + 3.50 rest"},
	} {
		if got := cpuPerInvoice(tc.e); got != tc.want {
			t.Errorf("cpuPerInvoice(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
	runs := []E2E{
		{Replicas: 0, Accepted: 1000, BenchCPU: time.Second}, // in-process: no split, not counted
		{Replicas: 1, Accepted: 1000, WorkerCPU: 4 * time.Second, BenchCPU: time.Second},
		{Replicas: 2, Accepted: 1000, WorkerCPU: 2 * time.Second, BenchCPU: time.Second},
	}
	if c, at := workerCapacity(runs, 2); c != 1000 || at.Replicas != 2 {
		t.Errorf("workerCapacity = %.0f at %d replicas, want 1000 at 2", c, at.Replicas)
	}
	if c, _ := workerCapacity(runs[:1], 2); c != 0 {
		t.Errorf("workerCapacity without process runs = %.0f, want 0", c)
	}
}
