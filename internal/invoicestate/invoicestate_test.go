package invoicestate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func newStore(t *testing.T) *invoicestate.Store {
	t.Helper()
	js := testenv.JetStream(t)
	kv, err := natsx.EnsureKV(t.Context(), js, "TEST_STATE", 0)
	if err != nil {
		t.Fatal(err)
	}
	return invoicestate.NewStore(natsx.NewCAS(kv), nil)
}

// node is one state of the table, with the transition that leads into it.
type node struct {
	name  string
	state *invoicestate.State // nil: no record
	enter func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error
}

var base = invoicestate.State{SourceDigest: "src", InvoiceHash: "h", XML: &events.ObjectRef{Bucket: "b", Key: "k"}}

func nodes() []node {
	st := func(s invoicestate.Status, mode string) *invoicestate.State {
		x := base
		x.Status, x.Mode = s, mode
		return &x
	}
	return []node{
		{"none", nil, nil},
		{"queued", st(invoicestate.Queued, ""), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.Unsent(ctx, snap)
		}},
		{"sending_online", st(invoicestate.Sending, events.ModeOnline), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.StartOnline(ctx, snap, base, "S1")
		}},
		{"batch_queued", st(invoicestate.BatchQueued, ""), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.QueueForBatch(ctx, snap, base, "")
		}},
		{"sending_batch", st(invoicestate.Sending, events.ModeBatch), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.StartBatch(ctx, snap, "SB1")
		}},
		{"sent", st(invoicestate.Sent, events.ModeOnline), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.MarkSent(ctx, snap, "I1")
		}},
		{"rejected", st(invoicestate.Rejected, ""), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.Reject(ctx, snap, base)
		}},
		{"resend", st(invoicestate.Resend, events.ModeOnline), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.Resend(ctx, snap, 1)
		}},
		{"failed", st(invoicestate.Failed, ""), func(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot) error {
			return s.Fail(ctx, snap, "gave up")
		}},
	}
}

// TestTransitions tries every pair of states: a named transition succeeds exactly when the
// table allows it, and a refused one leaves the record as it was.
func TestTransitions(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	want := map[[2]string]bool{}
	for _, p := range [][2]string{
		{"none", "sending_online"}, {"none", "rejected"}, {"none", "batch_queued"},
		{"queued", "sending_online"}, {"queued", "rejected"}, {"queued", "batch_queued"}, {"queued", "failed"},
		{"sending_online", "queued"}, {"sending_online", "sending_online"}, {"sending_online", "sent"},
		{"sending_online", "rejected"}, {"sending_online", "batch_queued"}, {"sending_online", "failed"},
		{"batch_queued", "sending_batch"}, {"batch_queued", "batch_queued"}, {"batch_queued", "failed"},
		{"sending_batch", "sent"}, {"sending_batch", "batch_queued"}, {"sending_batch", "failed"},
		{"sent", "resend"}, {"sent", "batch_queued"}, {"sent", "failed"},
		{"resend", "sending_online"}, {"resend", "rejected"}, {"resend", "batch_queued"}, {"resend", "failed"},
	} {
		want[p] = true
	}
	all := nodes()
	n := 0
	for _, from := range all {
		for _, to := range all[1:] {
			n++
			key := invoicestate.Key("1111111111", from.name+"-"+to.name)
			snap, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if from.state != nil {
				// Put the record in the from state directly (a fresh life).
				if err := s.Restart(ctx, snap, *from.state); err != nil {
					t.Fatal(err)
				}
				if err := forceStatus(ctx, s, snap, *from.state); err != nil {
					t.Fatal(err)
				}
			}
			before := snap.Rev
			err = to.enter(ctx, s, snap)
			var te *invoicestate.TransitionError
			switch {
			case want[[2]string{from.name, to.name}]:
				if err != nil {
					t.Errorf("%s -> %s: %v, want allowed", from.name, to.name, err)
				}
			case !errors.As(err, &te):
				t.Errorf("%s -> %s: %v, want a TransitionError", from.name, to.name, err)
			default:
				if snap.Rev != before {
					t.Errorf("%s -> %s: refused, yet the revision moved", from.name, to.name)
				}
				again, err := s.Get(ctx, key)
				if err != nil || again.Rev != before {
					t.Errorf("%s -> %s: refused, yet the record changed (%v)", from.name, to.name, err)
				}
			}
		}
	}
	if n != 9*8 {
		t.Fatalf("tried %d pairs", n)
	}
}

// forceStatus walks a restarted record (queued) to st's status by allowed transitions.
func forceStatus(ctx context.Context, s *invoicestate.Store, snap *invoicestate.Snapshot, st invoicestate.State) error {
	switch {
	case st.Status == invoicestate.Queued:
		return nil
	case st.Status == invoicestate.Sending && st.Mode == events.ModeOnline:
		return s.StartOnline(ctx, snap, base, "S0")
	case st.Status == invoicestate.BatchQueued:
		return s.QueueForBatch(ctx, snap, base, "")
	case st.Status == invoicestate.Sending:
		if err := s.QueueForBatch(ctx, snap, base, ""); err != nil {
			return err
		}
		return s.StartBatch(ctx, snap, "SB0")
	case st.Status == invoicestate.Sent:
		if err := s.StartOnline(ctx, snap, base, "S0"); err != nil {
			return err
		}
		return s.MarkSent(ctx, snap, "I0")
	case st.Status == invoicestate.Resend:
		if err := forceStatus(ctx, s, snap, invoicestate.State{Status: invoicestate.Sent}); err != nil {
			return err
		}
		return s.Resend(ctx, snap, 1)
	case st.Status == invoicestate.Rejected:
		return s.Reject(ctx, snap, base)
	case st.Status == invoicestate.Failed:
		return s.Fail(ctx, snap, "x")
	}
	return errors.New("unknown status")
}

// TestChangedMeansLookAgain: two handlers read the same revision; the second write fails with
// ErrChanged and leaves the first one's record in place.
func TestChangedMeansLookAgain(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	key := invoicestate.Key("1111111111", "FV/1")
	a, _ := s.Get(ctx, key)
	b, _ := s.Get(ctx, key)
	if err := s.StartOnline(ctx, a, base, "S-A"); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueForBatch(ctx, b, base, ""); !errors.Is(err, invoicestate.ErrChanged) {
		t.Fatalf("second writer: %v, want ErrChanged", err)
	}
	got, _ := s.Get(ctx, key)
	if got.State.Status != invoicestate.Sending || got.State.SessionID != "S-A" {
		t.Fatalf("record %+v, want the first writer's", got.State)
	}
	// The revision a write returns is the one the next write needs: no read in between.
	if err := s.MarkSent(ctx, a, "I-A"); err != nil {
		t.Fatal(err)
	}
}

// TestRacingWriters: of many handlers racing from one revision, exactly one wins.
func TestRacingWriters(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	key := invoicestate.Key("1111111111", "FV/race")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, changed := 0, 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := s.Get(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
			err = s.StartOnline(ctx, snap, base, "S"+string(rune('A'+i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, invoicestate.ErrChanged):
				changed++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || changed != 7 {
		t.Fatalf("%d wins, %d changed; want 1 and 7", wins, changed)
	}
}

// TestKey keeps the keys of records written before this package (the sender's StateKey).
func TestKey(t *testing.T) {
	for _, tc := range []struct{ nip, id, want string }{
		{"5265877635", "FV-2026_11", "inv.5265877635.FV-2026_11"},
		{"5265877635", "FV/2026/11/001", "inv.5265877635.FV=2f2026=2f11=2f001"},
		{"5265877635", "a=b.c ż", "inv.5265877635.a=3db=2ec=20=c5=bc"},
	} {
		if got := invoicestate.Key(tc.nip, tc.id); got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }
