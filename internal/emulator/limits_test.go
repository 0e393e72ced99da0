package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func production(c *Config) { c.Limits = LimitConfig{} }

func TestThirtyFirstSendInAMinuteGets429(t *testing.T) {
	v := newEnv(t, production)
	s := v.open(tokA)
	req := s.request(readSample(t, "valid", sample))
	ctx := context.Background()
	// 30 sends in 4.5 s: under 10/s, at the 30/min limit.
	for i := range 30 {
		resp, err := s.c.KsefInvoiceSendWithResponse(ctx, req)
		if err != nil || resp.JSON200 == nil {
			t.Fatalf("send %d: %v %s", i+1, err, resp.Body)
		}
		v.clock.Advance(150 * time.Millisecond)
	}
	resp, err := s.c.KsefInvoiceSendWithResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != http.StatusTooManyRequests {
		t.Fatalf("31st send: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	var e ksefapi.Error
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != "429" || e.Description != "Too Many Requests" || !strings.Contains(details(e), "Przekroczono limit 30 żądań na minutę") {
		t.Errorf("error %+v %q", e, details(e))
	}
	// The first send leaves the minute window 60 s after it was made: 4.5 s have passed.
	if ra := resp.HTTPResponse.Header.Get("Retry-After"); ra != "56" {
		t.Errorf("Retry-After %q, want 56", ra)
	}
	if n := v.e.TooManyRequests(); n != 1 {
		t.Errorf("429s counted: %d", n)
	}
	if n := v.e.Requests(ksef.OpInvoiceSend, http.StatusTooManyRequests); n != 1 {
		t.Errorf("send 429s: %d", n)
	}
	// Another operation has its own counter.
	if st := s.info(); st.InvoiceCount != 30 {
		t.Errorf("invoice count %d", st.InvoiceCount)
	}
	v.clock.Advance(56 * time.Second)
	if resp, _ := s.c.KsefInvoiceSendWithResponse(ctx, req); resp.JSON200 == nil {
		t.Errorf("after Retry-After: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
}

func TestLimitsPerSecondAndPerContext(t *testing.T) {
	v := newEnv(t, production)
	ctx := context.Background()
	a, b := v.client(tokA), v.client(tokB)
	for i := range 10 {
		if r, _ := a.KsefInvoiceQueryStatusWithResponse(ctx, "q"); r.StatusCode() != http.StatusNotFound {
			t.Fatalf("request %d: %d", i, r.StatusCode())
		}
	}
	r, _ := a.KsefInvoiceQueryStatusWithResponse(ctx, "q")
	if r.StatusCode() != http.StatusTooManyRequests || r.HTTPResponse.Header.Get("Retry-After") != "1" {
		t.Fatalf("11th in a second: %d %q", r.StatusCode(), r.HTTPResponse.Header.Get("Retry-After"))
	}
	if r, _ := b.KsefInvoiceQueryStatusWithResponse(ctx, "q"); r.StatusCode() != http.StatusNotFound {
		t.Errorf("another context: %d", r.StatusCode())
	}
}

func TestRepeated429sLockOut(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Limits = LimitConfig{
			Table:        ksef.Limits{ksef.OpSessionStatus: {PerSecond: 1}},
			LockoutAfter: 2, LockoutBase: time.Minute, LockoutMax: 10 * time.Minute,
		}
	})
	c := v.client(tokA)
	ctx := context.Background()
	retry := func() (int, int) {
		r, _ := c.KsefSessionStatusWithResponse(ctx, "s")
		n, _ := strconv.Atoi(r.HTTPResponse.Header.Get("Retry-After"))
		return r.StatusCode(), n
	}
	if code, _ := retry(); code != http.StatusNotFound {
		t.Fatalf("first: %d", code)
	}
	var got []int
	for range 5 {
		code, ra := retry()
		if code != http.StatusTooManyRequests {
			t.Fatalf("HTTP %d", code)
		}
		got = append(got, ra)
	}
	// Two plain 429s (1 s), then lock-outs of 1, 2, 4 minutes.
	want := []int{1, 1, 60, 120, 240}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Retry-After sequence %v, want %v", got, want)
		}
	}
	// The lock-out outlasts the window.
	v.clock.Advance(2 * time.Minute)
	if code, _ := retry(); code != http.StatusTooManyRequests {
		t.Errorf("inside the lock-out: %d", code)
	}
	v.e.ResetLimits()
	if code, _ := retry(); code != http.StatusNotFound {
		t.Errorf("after ResetLimits: %d", code)
	}
}

func TestLimiterMultiplierAndOff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	count := func(cfg LimitConfig) int {
		cfg.LockoutAfter = -1
		l := newLimiter(cfg)
		n := 0
		for range 1000 {
			if wait, _ := l.take(nipA, string(ksef.OpInvoiceGet), now); wait == 0 {
				n++
			}
		}
		return n
	}
	table := ksef.ProductionLimits()
	if n := count(LimitConfig{Table: table, Multiplier: 1}); n != 8 {
		t.Errorf("production: %d in one instant, want 8", n)
	}
	if n := count(LimitConfig{Table: table, Multiplier: 10}); n != 80 {
		t.Errorf("test environment: %d, want 80", n)
	}
	if n := count(LimitConfig{Table: table, Disabled: true}); n != 1000 {
		t.Errorf("off: %d", n)
	}
}

func TestBatchCloseHasItsOwnCounter(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Limits = LimitConfig{Table: ksef.Limits{ksef.OpSessionClose: {PerMinute: 1}, ksef.OpSessionOpenBatch: {PerMinute: 5}}}
	})
	s := v.open(tokA)
	s.close()
	if r, _ := s.c.KsefSessionCloseWithResponse(context.Background(), s.id); r.StatusCode() != http.StatusTooManyRequests {
		t.Fatalf("second online close: %d", r.StatusCode())
	}
	pkg := v.pack(zipOf(t, invoicesOf(t, 1)), 1)
	open := v.openBatch(tokA, pkg.request())
	if r, _ := s.c.KsefSessionCloseWithResponse(context.Background(), open.Id); r.StatusCode() != http.StatusOK {
		t.Fatalf("batch close: %d %s", r.StatusCode(), r.Body)
	}
}
