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
		// unlearned is the gap between polls before anything is learned: the poller's
		// FirstDelay (500 ms) leaves the first bounds of the lead that far apart.
		unlearned time.Duration
		// inFlight invoices are polled before any of them settles (20 invoices/s taking 2 s:
		// what is learned from one reaches the next 40 late).
		inFlight int
	}{
		{"steady, long calls", func(int) time.Duration { return 1850 * ms }, 150 * ms, 1850 * ms, 10 * ms, 50 * ms, 1},
		{"steady, long calls, polled every 500 ms at first", func(int) time.Duration { return 1850 * ms }, 150 * ms, 1850 * ms, 10 * ms, 500 * ms, 1},
		{"steady, long calls, 40 in flight", func(int) time.Duration { return 1850 * ms }, 150 * ms, 1850 * ms, 10 * ms, 500 * ms, 40},
		{"jittered, long calls, 40 in flight", func(i int) time.Duration { return 1850*ms - time.Duration(i%7)*ms }, 150 * ms, 1845 * ms, 15 * ms, 500 * ms, 40},
		{"spread, no latency", func(i int) time.Duration { return time.Duration(2+i%5) * ms }, 0, 6 * ms, 2 * ms, 50 * ms, 1},
		{"spread, no latency, polled every 500 ms at first", func(i int) time.Duration { return time.Duration(2+i%5) * ms }, 0, 6 * ms, 2 * ms, 500 * ms, 1},
		// Anywhere in (5, 6] ms sees four of five; the misses below tell it did not go earlier.
		{"spread, no latency, 40 in flight", func(i int) time.Duration { return time.Duration(2+i%5) * ms }, 0, 5 * ms, 3 * ms, 500 * ms, 40},
		{"KSeF's clock 300 ms behind", func(int) time.Duration { return 500 * ms }, -300 * ms, 500 * ms, 10 * ms, 50 * ms, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTiming()
			if _, ok := tm.first(); ok {
				t.Fatal("learned before any invoice")
			}
			const invoices = 400
			misses := 0
			for round := 0; round < invoices; round += tc.inFlight {
				type poll struct{ id, ready, age time.Duration }
				var settle []poll
				for i := round; i < min(round+tc.inFlight, invoices); i++ {
					id := fmt.Sprint(i)
					ready := tc.ready(i)
					age, gap := time.Duration(0), tm.gap(ms, 50*ms)
					if f, ok := tm.first(); ok {
						age = f
					} else {
						gap = tc.unlearned
					}
					// The next poll starts once the call that missed has come back, a gap later.
					rtt := max(tc.lead, 0) + ms
					for ; age < ready; age += rtt + gap {
						tm.missed(id, age)
						if i >= invoices-100 {
							misses++
						}
					}
					settle = append(settle, poll{time.Duration(i), ready, age})
				}
				for _, p := range settle {
					tm.settled(fmt.Sprint(int(p.id)), p.age, 2*tc.lead+ms, p.ready+tc.lead, true)
				}
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

// TestTimingFirstPollHits: invoices whose first poll always sees the outcome leave the upper
// bound of the lead without samples; settling them must not need one.
func TestTimingFirstPollHits(t *testing.T) {
	tm := newTiming()
	for i := range 3 * timingWindow {
		tm.settled(fmt.Sprint(i), 5*time.Millisecond, time.Millisecond, 4*time.Millisecond, true)
	}
	f, ok := tm.first()
	if !ok || f > 5*time.Millisecond {
		t.Errorf("first poll at %v (learned %v), want no later than the polls that saw the outcome", f, ok)
	}
	if tm.tracking {
		t.Error("tracking without an upper bound")
	}
}
