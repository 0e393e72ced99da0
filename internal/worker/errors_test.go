package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestSnoozeOr: an error pause finds a reason to wait in snoozes; any other is kept.
func TestSnoozeOr(t *testing.T) {
	limited := errors.New("limited")
	pause := func(err error) (time.Duration, bool) { return time.Minute, errors.Is(err, limited) }
	if err := SnoozeOr(pause, fmt.Errorf("sending: %w", limited)); !IsSnooze(err) {
		t.Errorf("%v, want a snooze", err)
	}
	other := errors.New("down")
	if err := SnoozeOr(pause, other); err != other {
		t.Errorf("%v, want the error itself", err)
	}
}
