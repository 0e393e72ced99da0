package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Control errors: what a Handler returns decides what happens to its
// message.
//
//	nil                      ack
//	Snooze(d)                redeliver after d; not a failure
//	Retry(err), other errors redeliver after backoff; a failure
//	RetryAfter(d, err)       redeliver after d; a failure
//	Permanent(err)           dead-letter (error_kind "permanent") at once
//	DeadLetter(kind, err)    dead-letter with kind at once
//
// After Config.MaxFailures failures the message is dead-lettered as
// "max_deliver" ("panic" when the last failure was a panic). Control
// errors may be wrapped; errors.As finds them.

type snoozeError struct{ d time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("snoozed for %v", e.d) }

// Snooze asks for the message again after d without counting a failure:
// the work is not done yet (a KSeF session still processing, a rate limit
// window). d <= 0 redelivers at once.
func Snooze(d time.Duration) error { return &snoozeError{d} }

type retryError struct {
	err   error
	after time.Duration // 0: backoff
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry marks err as a failure worth retrying with backoff. Plain errors
// are treated the same way; Retry documents the intent.
func Retry(err error) error { return &retryError{err: nonNil(err)} }

// RetryAfter is Retry with a given delay instead of the backoff (e.g. a
// server's Retry-After).
func RetryAfter(d time.Duration, err error) error { return &retryError{err: nonNil(err), after: d} }

type deadLetterError struct {
	kind events.ErrorKind
	err  error
}

func (e *deadLetterError) Error() string { return e.err.Error() }
func (e *deadLetterError) Unwrap() error { return e.err }

// Permanent marks err as one no retry can fix: the message is
// dead-lettered at once with error_kind "permanent".
func Permanent(err error) error { return DeadLetter(events.KindPermanent, err) }

// DeadLetter dead-letters the message at once with the given kind.
func DeadLetter(kind events.ErrorKind, err error) error {
	return &deadLetterError{kind: kind, err: nonNil(err)}
}

// SnoozeOr is err as a handler's result: a snooze when pause finds in it a reason to wait rather
// than a failure (ratelimit.Pause: a request limit or a 429, for as long as KSeF asks), else err.
func SnoozeOr(pause func(error) (time.Duration, bool), err error) error {
	if d, ok := pause(err); ok {
		return Snooze(d)
	}
	return err
}

// PanicError is what a recovered panic becomes.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func nonNil(err error) error {
	if err == nil {
		return errors.New("unspecified error")
	}
	return err
}

// decodeKind maps an events decode error to a dead-letter kind.
func decodeKind(err error) events.ErrorKind {
	switch {
	case errors.Is(err, events.ErrMalformed):
		return events.KindMalformed
	case errors.Is(err, events.ErrUnknownVersion):
		return events.KindUnknownVersion
	}
	return events.KindInvalid
}
