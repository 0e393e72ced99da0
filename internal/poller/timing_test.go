package poller

import (
	"fmt"
	"testing"
	"time"
)

// TestTimingLearns feeds the estimator invoices whose outcome KSeF shows at a known age, polled
// as the poller would (at the learned time, then at short gaps), and checks where the first poll
// settles: no earlier than the outcome for most invoices, and not much later.
func TestTimingLearns(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		// ready(i) is the age at which a poll starting then sees invoice i's outcome; the
		// acquisition date's age is ready + lead.
		ready      func(i int) time.Duration
		lead       time.Duration
		wantFirstN time.Duration // the learned first poll's age lies in [want, want+slack]
		slack      time.Duration
	}{
		{"steady, long calls", func(int) time.Duration { return 1850 * ms }, 150 * ms, 1850 * ms, 10 * ms},
		{"spread, no latency", func(i int) time.Duration { return time.Duration(2+i%5) * ms }, 0, 6 * ms, 2 * ms},
		{"KSeF's clock 300 ms behind", func(int) time.Duration { return 500 * ms }, -300 * ms, 500 * ms, 10 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTiming()
			if _, ok := tm.first(); ok {
				t.Fatal("learned before any invoice")
			}
			misses := 0
			for i := range 200 {
				id := fmt.Sprint(i)
				ready := tc.ready(i)
				age, gap := time.Duration(0), tm.gap(ms, 50*ms)
				if f, ok := tm.first(); ok {
					age = f
				} else {
					gap = 50 * ms // the unlearned schedule's quick look
				}
				for ; age < ready; age += gap {
					tm.missed(id, age)
					if i >= 100 {
						misses++
					}
				}
				tm.settled(id, age, 2*tc.lead+ms, ready+tc.lead, true)
			}
			f, ok := tm.first()
			if !ok {
				t.Fatal("nothing learned")
			}
			if f < tc.wantFirstN || f > tc.wantFirstN+tc.slack {
				t.Errorf("first poll at %v, want %v..%v", f, tc.wantFirstN, tc.wantFirstN+tc.slack)
			}
			if misses > 15 {
				t.Errorf("%d polls of the last 100 invoices came before the outcome", misses)
			}
			if len(tm.notes) != 0 {
				t.Errorf("%d notes left over", len(tm.notes))
			}
		})
	}
}

// TestTimingIgnoresForeignClocks: acquisition dates that cannot be right in our clock (an
// accelerated test clock) teach nothing, and the first poll is never later than polls that saw
// the outcome.
func TestTimingIgnoresForeignClocks(t *testing.T) {
	tm := newTiming()
	for i := range 10 {
		tm.settled(fmt.Sprint(i), 40*time.Millisecond, time.Millisecond, time.Duration(i+1)*time.Hour, true)
	}
	if f, ok := tm.first(); ok {
		t.Fatalf("learned %v from acquisition dates hours after the answers", f)
	}
	tm.settled("no-date", 40*time.Millisecond, time.Millisecond, 0, false)
	if _, ok := tm.first(); ok {
		t.Fatal("learned from an outcome without an acquisition date")
	}
}

func TestTimingBoundsNotes(t *testing.T) {
	tm := newTiming()
	for i := range maxNotes + 10 {
		tm.missed(fmt.Sprint(i), time.Millisecond)
	}
	if len(tm.notes) > maxNotes {
		t.Fatalf("%d notes kept, at most %d", len(tm.notes), maxNotes)
	}
}
