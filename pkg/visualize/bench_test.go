package visualize

import (
	"context"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heapSampler records the largest live heap seen while it runs, reading
// runtime/metrics (no stop-the-world) every 100µs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Go(func() {
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			if v := heapNow(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak.Load()
}

// peakHeapLimit bounds the live heap of rendering a 1,000-line invoice. The
// input is about 250 KB of XML and the PDF about 30 pages; the bound leaves
// room for GC pacing (the heap may grow to twice the live set before a
// collection) while still catching anything that scales badly with the
// number of lines.
const peakHeapLimit = 64 << 20

func benchmarkRender(b *testing.B, format Format) {
	data := manyLines(1000)
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Format: format, Language: LangPLEN}
	ctx := context.Background()
	var size int64
	cw := &countWriter{}
	if err := r.Render(ctx, cw, data, opts); err != nil {
		b.Fatal(err)
	}
	size = cw.n

	runtime.GC()
	base := heapNow()
	h := startHeapSampler()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := r.Render(ctx, io.Discard, data, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peak := h.Stop()
	grow := float64(0)
	if peak > base {
		grow = float64(peak - base)
	}
	b.ReportMetric(grow/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/(1<<10), "out-KiB")
	if grow > peakHeapLimit {
		b.Errorf("peak heap grew by %.1f MiB rendering 1,000 lines, bound %d MiB", grow/(1<<20), peakHeapLimit>>20)
	}
}

// BenchmarkRender1000Lines renders a generated 1,000-line invoice to PDF
// and reports, besides time and allocations, the peak live heap above the
// idle baseline (peak-heap-MiB) and the output size.
func BenchmarkRender1000Lines(b *testing.B) { benchmarkRender(b, FormatPDF) }

// BenchmarkRender1000LinesHTML is the same for HTML.
func BenchmarkRender1000LinesHTML(b *testing.B) { benchmarkRender(b, FormatHTML) }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
