package bench

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// MemoryBound is the most a downloader or sender process may hold resident.
const MemoryBound = 64 << 20

// Memory is one worker process's peak resident set while doing one large job.
type Memory struct {
	Worker  string
	Job     string
	PeakRSS int64 // bytes (VmHWM)
	// Threads is the most OS threads the process had (sampled every 50 ms).
	Threads int
	Elapsed time.Duration
	Problem string
}

// WithinBound reports whether the peak stayed at or under MemoryBound.
func (m Memory) WithinBound() bool { return m.PeakRSS > 0 && m.PeakRSS <= MemoryBound }

// downloaderMemory runs a downloader process that fetches every invoice of buyer in one query
// and reports its peak RSS. The emulator already holds the invoices (an end-to-end run sent them).
func (b *Bench) downloaderMemory(ctx context.Context, v *env, buyer string, want int) Memory {
	m := Memory{Worker: "downloader", Job: fmt.Sprintf("query of %d invoices", want)}
	b.logf("memory: downloader fetching %d invoices ...", want)
	if err := v.e.Emulator.WaitIdle(ctx); err != nil {
		m.Problem = err.Error()
		return m
	}
	tr := newTracker()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	tr.follow(fctx, v)
	p, err := b.startServices(ctx, v, []string{pipeline.Downloader}, 1)
	if err != nil {
		m.Problem = err.Error()
		return m
	}
	defer p.stop()
	threads := sampleThreads(p.cmds[0].Process.Pid)
	start := time.Now()
	q := &events.QueryRequested{QueryID: "bench-download", SubjectType: events.SubjectBuyer,
		From: events.At(start.Add(-2 * time.Hour)), To: events.At(start.Add(time.Hour))}
	q.ContextNIP = buyer
	if err := v.e.Runtime.Publisher.Publish(ctx, q, nil); err != nil {
		m.Problem = err.Error()
		return m
	}
	wctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	err = tr.wait(wctx, func() bool { return tr.completed[q.QueryID] != nil || len(tr.deadLetters) > 0 }, p.alive)
	m.Elapsed = time.Since(start)
	m.PeakRSS, _ = peakRSS(p.cmds[0].Process.Pid)
	m.Threads = threads.Stop()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	done := tr.completed[q.QueryID]
	switch {
	case len(tr.deadLetters) > 0:
		m.Problem = "dead letter: " + tr.deadLetters[0]
	case err != nil:
		m.Problem = fmt.Sprintf("query not completed: %v", err)
	case done.InvoiceCount != want:
		m.Problem = fmt.Sprintf("downloaded %d invoices, want %d", done.InvoiceCount, want)
	default:
		m.Job = fmt.Sprintf("query of %d invoices (%d parts)", done.InvoiceCount, len(done.Parts))
	}
	return m
}

// senderMemory makes the sender process send a batch package whose first part is partBytes
// (before encryption): production limits exhaust the online budget after a few sends, and
// invoices of ~0.9 MB with poorly compressible lines fill the part. It reports the sender's
// peak RSS.
func (b *Bench) senderMemory(ctx context.Context, partBytes int64) Memory {
	m := Memory{Worker: "sender"}
	g := NewGenerator(b.o.Seed+7, buyer, time.Now())
	g.MinLines, g.MaxLines, g.NameLen = 1700, 1800, 300
	sample, err := g.Invoice(NIP(1000), 0)
	if err != nil {
		m.Problem = err.Error()
		return m
	}
	packed := compressedSize(sample.XML)
	// The online budget (30 sends a minute) takes some first; the rest go in the package.
	count := int(partBytes/packed) + 40
	b.logf("memory: sender batch of %d invoices of ~%d KB (%d KB compressed) ...", count, len(sample.XML)>>10, packed>>10)
	invoices, err := g.Many(count, func(int) string { return NIP(1000) })
	if err != nil {
		m.Problem = err.Error()
		return m
	}
	vars := baseEnv(&b.o)
	vars["KSEF_LIMITS"] = "production"
	vars["KSEF_BATCH_LINGER"] = "30s" // one package, however long validating the backlog takes
	vars["KSEF_LOG_LEVEL"] = "info"
	em := ZeroLatency.emulator()
	em.Limits = emulator.LimitConfig{}
	v, err := startEnv(ctx, b.dir("memory-sender"), envConfig{Env: vars, Tokens: map[string]string{NIP(1000): "bench-token-0"}, Emulator: em, Log: b.log})
	if err != nil {
		m.Problem = err.Error()
		return m
	}
	defer v.close()
	tr := newTracker()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	tr.follow(fctx, v)
	// The whole backlog is there before the sender starts, as after an ERP's month-end run.
	if err := publish(ctx, v, tr, invoices, 0); err != nil {
		m.Problem = err.Error()
		return m
	}
	start := time.Now()
	p, err := b.startServices(ctx, v, []string{pipeline.Sender}, 1)
	if err != nil {
		m.Problem = err.Error()
		return m
	}
	threads := sampleThreads(p.cmds[0].Process.Pid)
	wctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	err = tr.wait(wctx, func() bool { return len(tr.sent)+len(tr.rejected) >= len(invoices) || len(tr.deadLetters) > 0 }, p.alive)
	m.Elapsed = time.Since(start)
	m.PeakRSS, _ = peakRSS(p.cmds[0].Process.Pid)
	m.Threads = threads.Stop()
	p.stop()
	largest, parts := batchParts(filepath.Join(v.dir, "sender-1.log"))
	m.Job = fmt.Sprintf("%d invoices, batch package of %d parts, largest part %.0f MB", len(invoices), parts, float64(largest)/1e6)
	tr.mu.Lock()
	sent, rejected := len(tr.sent), len(tr.rejected)
	tr.mu.Unlock()
	if err != nil {
		m.Problem = fmt.Sprintf("%d of %d sent: %v", sent, len(invoices), err)
	} else if rejected > 0 {
		m.Problem = fmt.Sprintf("%d rejected", rejected)
	}
	if largest < partBytes*9/10 {
		m.Problem += fmt.Sprintf(" (largest part %d bytes, wanted %d)", largest, partBytes)
	}
	return m
}

// compressedSize is the invoice's size deflated as in a batch package.
func compressedSize(xml []byte) int64 {
	cw := &countWriter{}
	zw := zip.NewWriter(cw)
	w, _ := zw.Create("x.xml")
	w.Write(xml)
	zw.Close()
	return cw.n
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// batchParts reads the sender's log for its batch packages: the largest package's size capped
// at a part's (100 MB), and the most parts.
func batchParts(logPath string) (largest int64, parts int) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		var rec struct {
			Msg   string `json:"message"`
			Bytes int64  `json:"bytes"`
			Parts int    `json:"parts"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "batch package sent" {
			largest = max(largest, min(rec.Bytes, 100_000_000))
			parts = max(parts, rec.Parts)
		}
		if err == io.EOF || err != nil {
			return largest, parts
		}
	}
}
