package emulator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func benchEnv(b *testing.B) *env {
	return newEnv(b, func(c *Config) {
		c.ProcessingDelay, c.StorageDelay = -1, -1
		c.MaxInvoicesPerSession = 1 << 30
	})
}

// BenchmarkSendInvoice is one invoice sent over HTTP and processed (decrypt, XSD, semantics,
// duplicate check, KSeF number, XML to disk), the emulator's hot path.
func BenchmarkSendInvoice(b *testing.B) {
	v := benchEnv(b)
	s := v.open(tokA)
	base := readSample(b, "valid", sample)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		req := s.request(withNumber(b, base, fmt.Sprintf("BENCH/%d", i)))
		b.StartTimer()
		resp, err := s.c.KsefInvoiceSendWithResponse(ctx, req)
		if err != nil || resp.JSON200 == nil {
			b.Fatalf("%v %s", err, resp.Body)
		}
	}
	if err := v.e.WaitIdle(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := v.e.Stats().Outcomes[ksef.StatusAccepted]; got != b.N {
		b.Fatalf("%d accepted of %d", got, b.N)
	}
}

// BenchmarkQuery500 is a query over 500 invoices: start, status and the download of its part.
func BenchmarkQuery500(b *testing.B) {
	v := benchEnv(b)
	s := v.open(tokA)
	base := readSample(b, "valid", sample)
	for i := range 500 {
		s.send(withNumber(b, base, fmt.Sprintf("Q/%d", i)))
	}
	v.settle()
	from, to := v.clock.Now().Add(-time.Hour), v.clock.Now().Add(time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		q := v.query(tokB, ksefapi.Subject2, from, to)
		if q.status.NumberOfInvoices != 500 {
			b.Fatalf("%d invoices", q.status.NumberOfInvoices)
		}
		for _, p := range q.status.PartNumbers {
			if r, err := q.c.KsefInvoiceQueryResultWithResponse(ctx, q.id, p); err != nil || len(r.Body) == 0 {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkLimiterTake(b *testing.B) {
	l := newLimiter(LimitConfig{Table: ksef.ProductionLimits(), Multiplier: 1000, LockoutAfter: -1})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.take(nipA, string(ksef.OpInvoiceStatus), now.Add(time.Duration(i)*time.Millisecond))
	}
}
