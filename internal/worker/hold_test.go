package worker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestHoldOutlivesHandlersAndAckWait: one handler slot holds many messages, each kept alive past
// AckWait by the worker's heartbeats, and each settled later by its own outcome.
func TestHoldOutlivesHandlersAndAckWait(t *testing.T) {
	e := newEnv(t)
	const n = 20
	cfg := e.config("hold")
	cfg.Concurrency = 1
	cfg.AckWait = time.Second
	var mu sync.Mutex
	settles := map[string]func(error){}
	deliveries := map[string]int{}
	var settled atomic.Int32
	cfg.OnSettled = func(m *worker.Message, o worker.Outcome, err error, _ time.Duration) { settled.Add(1) }
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		id := m.Event.Common().InvoiceID
		mu.Lock()
		defer mu.Unlock()
		deliveries[id]++
		settles[id] = m.Hold()
		return nil
	})
	for i := range n {
		e.publish(accepted(i))
	}
	// Every message reaches the single handler slot: held ones do not occupy it.
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(settles) == n })
	// Held for over twice AckWait: heartbeats keep JetStream from redelivering.
	time.Sleep(2500 * time.Millisecond)
	mu.Lock()
	for id, d := range deliveries {
		if d != 1 {
			t.Errorf("%s delivered %d times while held", id, d)
		}
	}
	if s := settled.Load(); s != 0 {
		t.Errorf("%d settled before settle was called", s)
	}
	// Half succeed; the rest fail once (a retry) and then succeed.
	failed := map[string]bool{}
	i := 0
	for id, settle := range settles {
		if i%2 == 0 {
			settle(nil)
		} else {
			failed[id] = true
			settle(errors.New("package failed"))
		}
		settle(errors.New("ignored: only the first settle counts"))
		i++
	}
	clear(settles)
	mu.Unlock()
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(settles) == len(failed) })
	mu.Lock()
	for id, settle := range settles {
		if !failed[id] || deliveries[id] != 2 {
			t.Errorf("%s redelivered (%d deliveries), failed %v", id, deliveries[id], failed[id])
		}
		settle(nil)
	}
	mu.Unlock()
	e.settled("hold")
	if e.dlqCount() != 0 {
		t.Fatal("dead letters")
	}
}

// TestHoldSettledLikeAHandler: the failure budget and dead letters apply to held messages; an
// error returned after Hold wins over a later settle; settle may come before the handler returns.
func TestHoldSettledLikeAHandler(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h     func(m *worker.Message) error
		calls int32 // deliveries until the message is settled for good
		dead  events.ErrorKind
	}{
		{name: "held-failures-dead-lettered", calls: 3, dead: events.KindMaxDeliver, h: func(m *worker.Message) error {
			settle := m.Hold()
			go func() { time.Sleep(20 * time.Millisecond); settle(errors.New("package failed")) }()
			return nil
		}},
		{name: "held-permanent", calls: 1, dead: events.KindPermanent, h: func(m *worker.Message) error {
			settle := m.Hold()
			go settle(worker.Permanent(errors.New("no such context")))
			return nil
		}},
		{name: "error-after-hold-wins", calls: 3, dead: events.KindMaxDeliver, h: func(m *worker.Message) error {
			settle := m.Hold()
			defer settle(nil) // too late: the returned error settled the message
			return errors.New("queue full")
		}},
		{name: "settled-before-return", calls: 1, h: func(m *worker.Message) error {
			m.Hold()(nil)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var calls atomic.Int32
			e.run(e.config("hold-"+tc.name), func(ctx context.Context, m *worker.Message) error {
				calls.Add(1)
				return tc.h(m)
			})
			e.publish(accepted(1))
			if tc.dead != "" {
				if dl := e.deadLetters(1)[0]; dl.ErrorKind != tc.dead {
					t.Fatalf("dead letter kind %s, want %s", dl.ErrorKind, tc.dead)
				}
			}
			e.settled("hold-" + tc.name)
			if n := calls.Load(); n != tc.calls {
				t.Fatalf("%d deliveries, want %d", n, tc.calls)
			}
			if tc.dead == "" && e.dlqCount() != 0 {
				t.Fatal("dead-lettered")
			}
		})
	}
}

// TestHoldHandedBackAtShutdown: a message still held at the end of the drain is handed back at
// once (not after AckWait) and its late settle does nothing; one settled during the drain is
// acked.
func TestHoldHandedBackAtShutdown(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("hold-drain")
	cfg.AckWait = time.Minute // a redelivery within the test can only be a hand-back
	cfg.DrainTimeout = 300 * time.Millisecond
	held := make(chan func(error), 2)
	stop := e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		held <- m.Hold()
		return nil
	})
	e.publish(accepted(1))
	e.publish(accepted(2))
	first, second := recv(t, held), recv(t, held)
	go func() { time.Sleep(100 * time.Millisecond); first(nil) }() // settled within the drain
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Fatalf("Run returned after %v, before the drain timeout, with a message held", d)
	}
	second(nil) // after the hand-back: ignored

	got := make(chan *worker.Message, 2)
	e.run(cfg, func(ctx context.Context, m *worker.Message) error {
		got <- m
		return nil
	})
	m := recv(t, got)
	if m.Deliveries != 2 {
		t.Fatalf("redelivered message has %d deliveries, want 2", m.Deliveries)
	}
	e.settled("hold-drain")
	select {
	case m := <-got:
		t.Fatalf("message %d delivered again: the one settled during the drain was not acked", m.Seq)
	default:
	}
}
