package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Spec is what a worker says about itself: its durable consumer, how many messages it handles at
// once, and its handler. Each worker's package returns its own; the runtime adds the settings
// common to all (NATS, AckWait, failure budget) and runs it.
type Spec struct {
	// Name is the durable consumer's name and the stage of its dead letters.
	Name string
	// Subjects are the full subjects consumed (with prefix).
	Subjects []string
	// Concurrency is the worker's default handler count (a setting may override it).
	Concurrency int
	// MaxAckPending bounds the consumer's unacknowledged messages (0: Config's default).
	MaxAckPending int
	// Handler handles one message; nil in a Spec that only describes the consumer (provisioning).
	Handler Handler
	// Background, when set, runs beside the consumer until ctx ends.
	Background func(ctx context.Context)
	// Close, when set, runs once the consumer stopped, with a context of its own.
	Close func(ctx context.Context)
}

// Config is base (the runtime's common settings) with the spec's consumer.
func (s Spec) Config(base Config) Config {
	base.Name, base.Subjects, base.MaxAckPending = s.Name, s.Subjects, s.MaxAckPending
	if base.Concurrency <= 0 {
		base.Concurrency = s.Concurrency
	}
	return base
}

// Route handles one event type; Routes dispatches among routes.
type Route struct {
	want string // the event type, for the dead letter's reason
	try  func(ctx context.Context, m *Message) (bool, error)
}

// On routes events of type E to h.
func On[E events.Event](h func(ctx context.Context, e E, m *Message) error) Route {
	var zero E
	return Route{want: fmt.Sprintf("%T", zero), try: func(ctx context.Context, m *Message) (bool, error) {
		e, ok := m.Event.(E)
		if !ok {
			return false, nil
		}
		return true, h(ctx, e, m)
	}}
}

// Routes is the handler of a worker consuming several event types. An event of none of them
// (a subject bound to the wrong worker) is dead-lettered as invalid: no retry can fix it.
func Routes(routes ...Route) Handler {
	return func(ctx context.Context, m *Message) error {
		for _, r := range routes {
			if handled, err := r.try(ctx, m); handled {
				return err
			}
		}
		want := make([]string, len(routes))
		for i, r := range routes {
			want[i] = r.want
		}
		return DeadLetter(events.KindInvalid, fmt.Errorf("unexpected event %T on %s (want %s)",
			m.Event, m.Subject, strings.Join(want, " or ")))
	}
}

// For is the handler of a worker consuming one event type (see Routes).
func For[E events.Event](h func(ctx context.Context, e E, m *Message) error) Handler {
	return Routes(On(h))
}
