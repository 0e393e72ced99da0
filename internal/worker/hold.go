package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Hold hands the message being handled over to work that outlives the handler, such as a batch
// package gathering thousands of invoices: the handler returns nil at once, freeing its slot and
// its goroutine, and the message stays unacknowledged, kept alive by the worker's heartbeats,
// until settle is called with what the handler would have returned (nil acks; Snooze, Retry,
// Permanent and other errors as for a handler, failure budget and dead letters included).
//
// A handler that returns an error after Hold settles the message with that error, and settle
// then does nothing. settle may be called before the handler returns, and from any goroutine;
// only its first call counts. When the worker stops, messages still held after DrainTimeout are
// handed back (redelivered at once, to this or another instance) and their settle does nothing.
//
// A Message the worker did not deliver (a handler called directly) cannot be held: settle does
// nothing then.
func (m *Message) Hold() (settle func(error)) {
	h := m.hold
	if h == nil {
		return func(error) {}
	}
	h.mu.Lock()
	if h.state == notHeld {
		h.state = heldByHandler
	}
	h.mu.Unlock()
	return h.settle
}

type holdState int

const (
	notHeld       holdState = iota
	heldByHandler           // Hold was called; the handler still runs
	heldOut                 // the handler returned nil: the worker keeps the message alive
	holdSettled
)

// hold is one message's hand-over state.
type hold struct {
	r     *runner
	msg   jetstream.Msg
	m     *Message
	start time.Time
	log   zerolog.Logger

	mu    sync.Mutex
	state holdState
	early *error // settle called while the handler still ran
}

// afterHandler decides, once the handler returned herr, whether the message is settled now (and
// with which error) or stays held.
func (h *hold) afterHandler(herr error) (now bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.state != heldByHandler:
		return true, herr
	case herr != nil:
		h.state = holdSettled
		return true, herr
	case h.early != nil:
		h.state = holdSettled
		return true, *h.early
	}
	h.state = heldOut
	h.r.held.add(h)
	return false, nil
}

func (h *hold) settle(err error) {
	h.mu.Lock()
	switch h.state {
	case heldByHandler:
		if h.early == nil {
			h.early = &err
		}
		h.mu.Unlock()
		return
	case heldOut:
		h.state = holdSettled
	default:
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	h.r.held.remove(h)
	h.r.finish(h, err)
}

// heartbeat tells JetStream the held message is still being worked on. Under h.mu, so that no
// heartbeat follows the settlement (it would reset a delayed nak's timer).
func (h *hold) heartbeat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != heldOut {
		return
	}
	if err := h.msg.InProgress(); err != nil {
		h.log.Debug().Err(err).Msg("in-progress heartbeat of a held message failed")
	}
}

// handBack settles a message still held when the worker stops: it is redelivered at once.
func (h *hold) handBack() {
	h.mu.Lock()
	if h.state != heldOut {
		h.mu.Unlock()
		return
	}
	h.state = holdSettled
	h.mu.Unlock()
	h.r.held.remove(h)
	h.log.Info().Msg("handing back a message still held at shutdown")
	h.r.finish(h, Snooze(0))
}

// holds is the set of messages handed over by their handlers.
type holds struct {
	mu  sync.Mutex
	set map[*hold]struct{}
}

func (s *holds) add(h *hold) {
	s.mu.Lock()
	if s.set == nil {
		s.set = map[*hold]struct{}{}
	}
	s.set[h] = struct{}{}
	s.mu.Unlock()
}

func (s *holds) remove(h *hold) {
	s.mu.Lock()
	delete(s.set, h)
	s.mu.Unlock()
}

func (s *holds) list() []*hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*hold, 0, len(s.set))
	for h := range s.set {
		out = append(out, h)
	}
	return out
}

func (s *holds) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.set)
}

// heartbeats keeps the held messages alive until done is closed.
func (s *holds) heartbeats(interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			for _, h := range s.list() {
				h.heartbeat()
			}
		}
	}
}

// drain waits until nothing is held or deadline passes, then hands back what is still held.
func (s *holds) drain(deadline <-chan time.Time, log zerolog.Logger) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.len() > 0 {
		select {
		case <-t.C:
			continue
		case <-deadline:
		}
		left := s.list()
		log.Warn().Int("held", len(left)).Msg("messages still held at the end of the drain; handing them back")
		for _, h := range left {
			h.handBack()
		}
		return
	}
}

// finish settles a message whose handler's outcome is known and reports it.
func (r *runner) finish(h *hold, err error) {
	// Settling must finish even while the worker drains.
	sctx, cancel := context.WithTimeout(h.log.WithContext(context.Background()), 30*time.Second)
	defer cancel()
	o := r.settle(sctx, h.msg, h.m, err)
	if r.cfg.OnSettled != nil {
		r.cfg.OnSettled(h.m, o, err, time.Since(h.start))
	}
}
