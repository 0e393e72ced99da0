package events

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that [Decode] returns for bad input
// and by every validation error, so a consumer can dead-letter with a single
// errors.Is(err, events.ErrInvalid).
var ErrInvalid = errors.New("events: invalid event")

// Typed decode errors. Each wraps [ErrInvalid].
var (
	// ErrMalformed: the bytes are not a msgpack map of the expected shape
	// (truncated data, wrong field types, trailing bytes).
	ErrMalformed = fmt.Errorf("%w: malformed msgpack", ErrInvalid)
	// ErrUnknownType: the "type" field names no event this package knows.
	ErrUnknownType = fmt.Errorf("%w: unknown event type", ErrInvalid)
	// ErrUnknownVersion: the "v" field is missing or is a schema version
	// this package cannot read.
	ErrUnknownVersion = fmt.Errorf("%w: unknown schema version", ErrInvalid)
)

// FieldError reports a missing or invalid field. Field is the wire name,
// dotted for nested values ("xml.bucket").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return "events: field " + e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func missing(field string) error { return &FieldError{Field: field, Reason: "missing"} }

func invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }
