package worker

import (
	"errors"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// IsSnooze reports whether a handler's error asks for a snooze (see
// Snooze): not a failure, so tracing and metrics need not report it as one.
func IsSnooze(err error) bool {
	var s *snoozeError
	return errors.As(err, &s)
}

// DeadLetterKind is the error_kind of the dead letter a handler's error
// leads to when its message is dead-lettered: the kind given to DeadLetter
// (or "permanent"), else "panic" for a panic and "max_deliver" for a spent
// failure budget. It mirrors the choice the consume loop makes, for metrics
// labelled by kind (Config.OnSettled gets the handler's error, not the kind).
func DeadLetterKind(err error) events.ErrorKind {
	var dl *deadLetterError
	var pe *PanicError
	switch {
	case errors.As(err, &dl):
		switch dl.kind {
		case events.KindMalformed, events.KindUnknownVersion, events.KindInvalid,
			events.KindPermanent, events.KindMaxDeliver, events.KindPanic, events.KindDeadline:
			return dl.kind
		}
		return events.KindPermanent
	case errors.As(err, &pe):
		return events.KindPanic
	}
	return events.KindMaxDeliver
}
