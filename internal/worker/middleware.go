package worker

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Middleware wraps a Handler (decoding, logging, metrics, ...).
type Middleware func(Handler) Handler

// Chain returns h wrapped by mw, the first outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Logger returns the logger of the message being handled: the worker's
// logger with the worker name, subject, stream sequence and correlation id.
func Logger(ctx context.Context) *zerolog.Logger { return zerolog.Ctx(ctx) }

// Recover turns a panic in the handler into a *PanicError, a failure like
// any other (retried, dead-lettered as "panic" when the budget is spent).
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next(ctx, m)
		}
	}
}

// Heartbeat calls m.InProgress every interval while the handler runs, so
// JetStream does not redeliver a message whose handling outlasts AckWait.
func Heartbeat(interval time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			if interval <= 0 || m.InProgress == nil {
				return next(ctx, m)
			}
			done := make(chan struct{})
			stopped := make(chan struct{})
			// Stop the heartbeat before returning: a progress signal after
			// the message is settled (e.g. after a delayed nak) would reset
			// its redelivery timer to AckWait.
			defer func() {
				close(done)
				<-stopped
			}()
			go func() {
				defer close(stopped)
				t := time.NewTicker(interval)
				defer t.Stop()
				for {
					select {
					case <-done:
						return
					case <-t.C:
						if err := m.InProgress(); err != nil {
							Logger(ctx).Debug().Err(err).Msg("in-progress heartbeat failed")
						}
					}
				}
			}()
			return next(ctx, m)
		}
	}
}

// Decode decodes m.Data into m.Event with codec. A message that is not a
// valid event is dead-lettered at once ("malformed", "unknown_version" or
// "invalid"); the handler never sees it. A correlation id missing from the
// headers is taken from the event.
func Decode(codec events.Codec) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			if m.Event == nil {
				ev, err := codec.Decode(m.Data)
				if err != nil {
					return DeadLetter(decodeKind(err), err)
				}
				m.Event = ev
			}
			if m.CorrelationID == "" && m.Event.Common().CorrelationID != "" {
				m.CorrelationID = m.Event.Common().CorrelationID
				l := Logger(ctx).With().Str("correlation_id", m.CorrelationID).Logger()
				ctx = l.WithContext(ctx)
			}
			return next(ctx, m)
		}
	}
}
