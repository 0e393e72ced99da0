package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// simulate runs replicas that each want to send as fast as the limiter allows, on a virtual
// clock, for the given duration, and returns the virtual instants of the grants.
func simulate(t *testing.T, limits ksef.Limits, replicas int, d time.Duration, margin time.Duration) []time.Time {
	t.Helper()
	start := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	now := start
	store := NewMemStore()
	l := New(store, Config{Limits: limits, Margin: margin, Now: func() time.Time { return now }})
	next := make([]time.Time, replicas) // when each replica asks next
	for i := range next {
		next[i] = start.Add(time.Duration(i) * time.Millisecond)
	}
	var grants []time.Time
	for {
		i := 0
		for j := range next {
			if next[j].Before(next[i]) {
				i = j
			}
		}
		if !next[i].Before(start.Add(d)) {
			return grants
		}
		now = next[i]
		wait, err := l.Reserve(context.Background(), "1111111111", ksef.OpInvoiceSend)
		if err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			grants = append(grants, now)
			next[i] = now.Add(time.Millisecond) // send again right away
		} else {
			next[i] = now.Add(wait)
		}
	}
}

// maxInWindow is the largest number of grants in any window of length span.
func maxInWindow(grants []time.Time, span time.Duration) int {
	best, from := 0, 0
	for to := range grants {
		for grants[to].Sub(grants[from]) >= span {
			from++
		}
		best = max(best, to-from+1)
	}
	return best
}

func TestReplicasStayUnderEveryWindow(t *testing.T) {
	limits := ksef.ProductionLimits()
	w := limits[ksef.OpInvoiceSend] // 10/s, 30/min, 180/h
	for _, replicas := range []int{1, 3, 8} {
		grants := simulate(t, limits, replicas, 3*time.Hour, 2*time.Second)
		if !slices.IsSortedFunc(grants, func(a, b time.Time) int { return a.Compare(b) }) {
			t.Fatal("grants out of order")
		}
		for i, limit := range w.Limits() {
			if got := maxInWindow(grants, ksef.Spans[i]); got > limit {
				t.Errorf("%d replicas: %d grants within %s, limit %d", replicas, got, ksef.Spans[i], limit)
			}
		}
		// The allowance over 3 hours is 540; the margin costs a little of it.
		if len(grants) < 540*95/100 {
			t.Errorf("%d replicas: %d grants in 3 h, want >= 95%% of 540", replicas, len(grants))
		}
	}
}

func TestThrottledPausesEveryone(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	store := NewMemStore()
	cfg := Config{Limits: ksef.ProductionLimits(), Now: func() time.Time { return now }}
	a, b := New(store, cfg), New(store, cfg) // two replicas
	if err := a.Throttled(context.Background(), "1111111111", ksef.OpInvoiceSend, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	wait, err := b.Reserve(context.Background(), "1111111111", ksef.OpInvoiceSend)
	if err != nil {
		t.Fatal(err)
	}
	if wait != 30*time.Second {
		t.Fatalf("the other replica may send in %v, want 30s", wait)
	}
	// Another context and another operation are not paused.
	if wait, _ := b.Reserve(context.Background(), "2222222222", ksef.OpInvoiceSend); wait != 0 {
		t.Fatalf("another context waits %v", wait)
	}
	if wait, _ := b.Reserve(context.Background(), "1111111111", ksef.OpInvoiceStatus); wait != 0 {
		t.Fatalf("another operation waits %v", wait)
	}
	now = now.Add(30 * time.Second)
	if wait, _ := b.Reserve(context.Background(), "1111111111", ksef.OpInvoiceSend); wait != 0 {
		t.Fatalf("still paused after Retry-After: %v", wait)
	}
}

func TestUnlimitedOperation(t *testing.T) {
	l := New(NewMemStore(), Config{Limits: ksef.ProductionLimits()})
	for range 1000 {
		if wait, err := l.Reserve(context.Background(), "1", ksef.OpBatchPartUpload); err != nil || wait != 0 {
			t.Fatalf("batch part uploads are not limited: wait %v, err %v", wait, err)
		}
	}
}

func TestHeadroom(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	l := New(NewMemStore(), Config{Limits: ksef.ProductionLimits(), Headroom: 0.5, Now: func() time.Time { return now }})
	granted := 0
	for range 20 {
		if wait, _ := l.Reserve(context.Background(), "1", ksef.OpInvoiceSend); wait == 0 {
			granted++
		}
	}
	if granted != 5 { // half of 10/s
		t.Fatalf("granted %d in one instant with half headroom, want 5", granted)
	}
}

func TestCorruptState(t *testing.T) {
	s := NewMemStore()
	if ok, err := s.Swap(context.Background(), key("1", ksef.OpInvoiceSend), []byte{1, 2, 3}, 0); !ok || err != nil {
		t.Fatal(err)
	}
	l := New(s, Config{Limits: ksef.ProductionLimits()})
	if _, err := l.Reserve(context.Background(), "1", ksef.OpInvoiceSend); err == nil {
		t.Fatal("corrupt state accepted")
	}
}

func BenchmarkReserve(b *testing.B) {
	l := New(NewMemStore(), Config{Limits: ksef.Limits{ksef.OpInvoiceStatus: {PerSecond: 1 << 30, PerMinute: 1 << 30, PerHour: 1200}}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Reserve(ctx, "1", ksef.OpInvoiceStatus)
	}
}

func TestForReturnsWaitErrorPastMaxWait(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var slept []time.Duration
	l := New(NewMemStore(), Config{Limits: ksef.ProductionLimits(), Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil }})
	lim := l.For("1111111111", 5*time.Second)
	ctx := context.Background()
	for range 10 { // 10/s are free
		if err := lim.Wait(ctx, ksef.OpInvoiceSend); err != nil {
			t.Fatal(err)
		}
	}
	// The 11th waits for the second window (about 3 s with the margin): within maxWait.
	if err := lim.Wait(ctx, ksef.OpInvoiceSend); err != nil || len(slept) != 1 {
		t.Fatalf("err %v, slept %v", err, slept)
	}
	for range 25 {
		if err := lim.Wait(ctx, ksef.OpInvoiceSend); err != nil {
			var we *WaitError
			if !errors.As(err, &we) {
				t.Fatal(err)
			}
			// 30 a minute spent: the next slot is about a minute away, past maxWait.
			if we.Wait < 30*time.Second || we.Op != ksef.OpInvoiceSend {
				t.Fatalf("WaitError %+v", we)
			}
			return
		}
	}
	t.Fatal("30 sends within a minute were all let through without a WaitError")
}

func TestPause(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want time.Duration
		ok   bool
	}{
		{"no slot soon", fmt.Errorf("ksef: %w", &WaitError{Op: ksef.OpInvoiceSend, Wait: 40 * time.Second}), 40 * time.Second, true},
		{"429 with Retry-After", &ksef.Error{HTTPStatus: 429, RetryAfter: 7 * time.Second}, 7 * time.Second, true},
		{"429 without Retry-After", &ksef.Error{HTTPStatus: 429}, time.Second, true},
		{"5xx", &ksef.Error{HTTPStatus: 502}, 0, false},
		{"other", errors.New("boom"), 0, false},
	} {
		if got, ok := Pause(tc.err); got != tc.want || ok != tc.ok {
			t.Errorf("%s: Pause = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
