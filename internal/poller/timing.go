package poller

import (
	"slices"
	"sync"
	"time"
)

// timing learns when KSeF shows the outcome of an online invoice, so that the first status call
// goes out at about that time instead of at once and again after growing snoozes: KSeF's status
// allowance per context (1200/h) is about 6 calls per online invoice, and a schedule that does
// not know the processing time either wastes them or overshoots the outcome by a lot.
//
// It keeps, over the last timingWindow accepted invoices:
//   - ready: the acquisition date KSeF reports minus the invoice's SentAt. Unlike the poll that
//     first saw the outcome, it tells how long processing took even when that poll came late.
//   - the lead of a status call: how long before the acquisition date a call may start and still
//     see the outcome (its travel to KSeF, and the offset between KSeF's clock and ours). Every
//     poll of an accepted invoice bounds it: one that saw the outcome from below
//     (acquisition age - its start age), one that did not from above.
//
// The first call starts at a high quantile of ready minus the lead. The bounds give the lead's
// first estimate; after that it is tracked (stochastic approximation) so that about
// readyQuantile of the first calls see the outcome: the lead is not constant where the
// acquisition date is not when the outcome shows (the emulator with no processing delay dates
// it at receipt, and its checks take a varying time). All ages are measured in the poller's
// clock from SentAt, so a constant offset between clocks only shifts the lead.
type timing struct {
	mu sync.Mutex
	// ready is acquisition - SentAt; hits the start ages of the polls that saw the outcome
	// (in our clock alone: they cap the first poll whatever the acquisition dates say).
	ready, hits ring
	// lower and upper bound the lead; lead is the tracked estimate once tracking (after
	// timingWindow/8 bounded invoices).
	lower, upper ring
	lead         time.Duration
	tracking     bool
	// notes are the polls of invoices not settled yet, by KSeF invoice id.
	notes map[string]*note
}

// note is what the poller saw of one invoice so far.
type note struct {
	polls  int
	misses []time.Duration // start ages of the polls that did not see the outcome
	late   bool            // a poll at or after the learned time did not see it
}

const (
	// timingWindow is how many invoices the estimates remember: enough to smooth the spread of
	// processing times, few enough to follow KSeF when it slows down.
	timingWindow = 64
	// timingMinSamples invoices are seen before the learned schedule is used.
	timingMinSamples = 2
	// readyQuantile of the processing times is when the first call goes: most invoices are
	// done by then, and a miss costs a round trip more.
	readyQuantile = 0.9
	// maxNotes bounds the notes of invoices whose outcome this replica has not seen (another
	// replica settled them).
	maxNotes = 10_000
	// clockTolerance is how far an acquisition date may lie after the answer that reported it
	// (KSeF's clock ahead of ours) before the pair is taken for clocks that do not agree (an
	// accelerated test clock) and not learned from.
	clockTolerance = time.Second
)

func newTiming() *timing { return &timing{notes: map[string]*note{}} }

// first is the start age of the first status call, once enough invoices were seen.
func (t *timing) first() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready.n < timingMinSamples || t.lower.n == 0 {
		return 0, false
	}
	return t.firstLocked(), true
}

func (t *timing) firstLocked() time.Duration {
	f := t.ready.quantile(readyQuantile) - t.leadLocked()
	return min(max(f, 0), t.hits.max())
}

// gap is the wait after a call that came before the outcome: the spread of recent processing
// times, at least floor and at most ceil.
func (t *timing) gap(floor, ceil time.Duration) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gapLocked(floor, ceil)
}

func (t *timing) gapLocked(floor, ceil time.Duration) time.Duration {
	d := ceil
	if t.ready.n >= timingMinSamples {
		d = t.ready.quantile(0.95) - t.ready.quantile(0.5)
	}
	return min(max(d, floor), ceil)
}

// leadLocked is the estimated lead of a status call: tracked, or at first in the middle of what
// the bounds allow, so that the next polls narrow it (the upper bound when they cross).
func (t *timing) leadLocked() time.Duration {
	if t.tracking {
		return t.lead
	}
	lo := t.lower.max()
	if t.upper.n == 0 {
		return lo
	}
	hi := t.upper.min()
	if lo >= hi {
		return hi
	}
	return lo + (hi-lo)/2
}

// missed records a poll at start age age that did not see the outcome and returns the polls of
// the invoice so far.
func (t *timing) missed(id string, age time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.notes[id]
	if n == nil {
		if len(t.notes) >= maxNotes {
			clear(t.notes)
		}
		n = &note{}
		t.notes[id] = n
	}
	n.polls++
	if t.ready.n >= timingMinSamples && t.lower.n > 0 && age >= t.firstLocked() {
		n.late = true
	}
	if len(n.misses) < 8 {
		n.misses = append(n.misses, age)
	}
	return n.polls
}

// settled records the poll at start age age, answered after rtt, that saw the outcome; acquired
// is the acquisition date's age (ok false when KSeF gave none, as for a rejection).
func (t *timing) settled(id string, age, rtt, acquired time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.notes[id]
	delete(t.notes, id)
	t.hits.add(age)
	if !ok || acquired > age+rtt+clockTolerance || (n != nil && len(n.misses) > 0 && acquired < n.misses[len(n.misses)-1]-clockTolerance) {
		return
	}
	if t.tracking {
		// Earlier after a first call that saw the outcome, later after one that did not, in
		// steps that balance at readyQuantile of the first calls seeing it.
		step := t.gapLocked(100*time.Microsecond, 50*time.Millisecond)
		if lo, hi := t.lower.max(), t.upper.min(); lo < hi {
			// While what the polls prove about the lead is still far apart, bigger steps: many
			// invoices are polled before one settles, and each miss costs a round trip.
			step = max(step, (hi-lo)/16)
		}
		if n != nil && n.late {
			t.lead -= time.Duration(readyQuantile * float64(step))
		} else {
			t.lead += time.Duration((1 - readyQuantile) * float64(step))
		}
	}
	t.ready.add(acquired)
	t.lower.add(acquired - age)
	if n != nil {
		for _, m := range n.misses {
			t.upper.add(acquired - m)
		}
	}
	if !t.tracking && t.lower.n >= timingWindow/8 && t.upper.n > 0 {
		t.lead, t.tracking = t.leadLocked(), true
	}
	if !t.tracking { // tracking implies both bounds have samples
		return
	}
	if lo, hi := t.lower.max(), t.upper.min(); lo < hi {
		// Steps taken for invoices polled before any of them settled add up: never past what
		// the polls prove (a step below the lower bound is room for the balancing above).
		t.lead = min(max(t.lead, lo-t.gapLocked(100*time.Microsecond, 50*time.Millisecond)), hi)
	}
}

// ring keeps the last timingWindow durations.
type ring struct {
	v [timingWindow]time.Duration
	n int // how many are set
	i int // the next to overwrite
}

func (r *ring) add(d time.Duration) {
	r.v[r.i] = d
	r.i = (r.i + 1) % len(r.v)
	r.n = min(r.n+1, len(r.v))
}

func (r *ring) quantile(q float64) time.Duration {
	s := slices.Clone(r.v[:r.n])
	slices.Sort(s)
	return s[min(int(float64(len(s))*q), len(s)-1)]
}

func (r *ring) max() time.Duration { return slices.Max(r.v[:r.n]) }
func (r *ring) min() time.Duration { return slices.Min(r.v[:r.n]) }
