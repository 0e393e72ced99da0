package ksef_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// TestQueryInProgressRetryAfter: while a query is being prepared KSeF answers its status and
// parts with 503 and Retry-After. The client waits out a short one itself and hands a longer
// one than MaxRetryAfter back to the caller at once, as it does for 429, so that a worker can
// reschedule instead of blocking.
func TestQueryInProgressRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		wait  bool // the client waits the delay out
	}{
		{"short", 5 * time.Second, true},
		{"longer than MaxRetryAfter", 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			h := startEmulatorAt(t, clock, func(c *emulator.Config) { c.QueryDelay = tc.delay })
			var slept time.Duration
			sleep := func(_ context.Context, d time.Duration) error {
				slept += d
				clock.Advance(d)
				return nil
			}
			var calls []ksef.Call
			c := h.client(t, tokB, ksef.WithClock(clock.Now, sleep), ksef.WithObserver(func(c ksef.Call) { calls = append(calls, c) }))
			ctx := context.Background()
			enc, key, err := c.NewEncryption(ctx)
			if err != nil {
				t.Fatal(err)
			}
			key.Zero()
			now := clock.Now()
			id, err := c.StartQuery(ctx, ksefapi.KsefInvoiceQueryStartRequest{
				Range: ksefapi.KsefInvoiceQueryStartRange{From: now.Add(-time.Hour), To: now}, EncryptionInfo: enc, SubjectType: ksefapi.Subject2,
			})
			if err != nil {
				t.Fatal(err)
			}
			calls = nil
			st, err := c.QueryStatus(ctx, id)
			if tc.wait {
				if err != nil {
					t.Fatal(err)
				}
				if st.NumberOfInvoices != 0 || len(st.PartNumbers) != 0 {
					t.Errorf("status %+v", st)
				}
				if slept < tc.delay || len(calls) != 2 || calls[0].HTTPStatus != http.StatusServiceUnavailable || !calls[0].Retrying {
					t.Errorf("slept %v, calls %+v", slept, calls)
				}
				return
			}
			var e *ksef.Error
			if !errors.As(err, &e) || e.HTTPStatus != http.StatusServiceUnavailable || e.Code != ksef.CodeQueryStatus || e.RetryAfter != tc.delay {
				t.Fatalf("err = %v, want the 503 with code 1303 and Retry-After %v", err, tc.delay)
			}
			if slept != 0 || len(calls) != 1 {
				t.Errorf("slept %v in %d attempts: a Retry-After over MaxRetryAfter is the caller's to wait", slept, len(calls))
			}
			_, err = c.QueryResult(ctx, id, "1")
			if !ksef.HasCode(err, ksef.CodeQueryResult) || !errors.As(err, &e) || e.RetryAfter != tc.delay || slept != 0 {
				t.Errorf("part: %v after sleeping %v", err, slept)
			}
		})
	}
}
