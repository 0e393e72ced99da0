package downloader

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// heapPeak samples the live heap every millisecond until stop is called, which returns the
// highest value seen above the heap at the start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		if peak < base {
			return 0
		}
		return peak - base
	}
}

func TestLargeQueryInManyParts(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 2,000 invoices")
	}
	e := newEnv(t, emulator.Config{QueryMaxPartSize: 128 << 10})
	start := time.Now().UTC().Add(-time.Minute)
	t0 := time.Now()
	var toB []sent
	for i := range 4 {
		toB = append(toB, e.send(tokenA, sellerNIP, buyerNIP, 500, "L"+string(rune('a'+i)))...)
	}
	t.Logf("sent %d invoices in %s", len(toB), time.Since(t0).Round(time.Millisecond))

	d := e.downloader(Config{}, nil)
	stop := heapPeak()
	t0 = time.Now()
	done, err := d.Download(context.Background(), e.request("erp-large", events.SubjectBuyer, start, time.Time{}, false), nil)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range done.Parts {
		total += p.Size
	}
	t.Logf("downloaded %d invoices in %d parts (%d KiB encrypted) in %s; peak heap +%.1f MiB",
		done.InvoiceCount, len(done.Parts), total>>10, time.Since(t0).Round(time.Millisecond), float64(peak)/(1<<20))
	if done.InvoiceCount != len(toB) || len(done.Parts) < 5 {
		t.Fatalf("query.completed: %d invoices in %d parts; want %d in several", done.InvoiceCount, len(done.Parts), len(toB))
	}
	downloaded, _, _ := subjectsOf(e.natsCfg.Subjects())
	e.checkInvoices("erp-large", e.streamEvents()[downloaded], toB)
	// One part is decrypted to disk at a time; memory holds the index of one part and the
	// store's upload buffers (up to twice its part size per upload of unknown length, doubled
	// again by garbage awaiting collection), never a whole part or package. The benchmark
	// shows the peak does not grow with the part.
	if limit := uint64(4*storage.DefaultPartSize + 16<<20); peak > limit {
		t.Errorf("peak heap grew by %d MiB, more than %d MiB", peak>>20, limit>>20)
	}
}
