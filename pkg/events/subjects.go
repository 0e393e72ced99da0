package events

import (
	"errors"
	"strings"
)

// Subjects builds NATS subjects under an optional prefix: with Prefix
// "acme", invoice.submitted is published on "acme.invoice.submitted"; with
// an empty Prefix on "invoice.submitted".
type Subjects struct{ Prefix string }

// Validate checks that the prefix is empty or dot-separated tokens without
// wildcards or whitespace.
func (s Subjects) Validate() error {
	if s.Prefix == "" {
		return nil
	}
	for _, tok := range strings.Split(s.Prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return errors.New("events: invalid subject prefix " + s.Prefix)
		}
	}
	return nil
}

// Subject prefixes a bare subject such as "invoice.sent".
func (s Subjects) Subject(bare string) string {
	if s.Prefix == "" {
		return bare
	}
	return s.Prefix + "." + bare
}

// Bare strips the prefix from a full subject; ok is false when subject does
// not carry it.
func (s Subjects) Bare(subject string) (bare string, ok bool) {
	if s.Prefix == "" {
		return subject, true
	}
	return strings.CutPrefix(subject, s.Prefix+".")
}

func (s Subjects) InvoiceSubmitted() string  { return s.Subject(TypeInvoiceSubmitted) }
func (s Subjects) InvoiceSent() string       { return s.Subject(TypeInvoiceSent) }
func (s Subjects) InvoiceAccepted() string   { return s.Subject(TypeInvoiceAccepted) }
func (s Subjects) InvoiceRejected() string   { return s.Subject(TypeInvoiceRejected) }
func (s Subjects) InvoiceDownloaded() string { return s.Subject(TypeInvoiceDownloaded) }
func (s Subjects) InvoiceVisualize() string  { return s.Subject(TypeVisualizeRequested) }
func (s Subjects) InvoiceVisualized() string { return s.Subject(TypeInvoiceVisualized) }
func (s Subjects) SessionClosed() string     { return s.Subject(TypeSessionClosed) }
func (s Subjects) SessionUpoStored() string  { return s.Subject(TypeSessionUpoStored) }
func (s Subjects) QueryRequested() string    { return s.Subject(TypeQueryRequested) }
func (s Subjects) QueryCompleted() string    { return s.Subject(TypeQueryCompleted) }

// BatchQueued is the subject of the batch queue items of one context: "batch.queued.<nip>".
func (s Subjects) BatchQueued(nip string) string { return s.Subject(TypeBatchQueued + "." + nip) }

// BatchQueuedAll matches the batch queue items of every context: "batch.queued.>".
func (s Subjects) BatchQueuedAll() string { return s.Subject(TypeBatchQueued + ".>") }

// DeadLetter returns the dead-letter subject for a message that arrived on
// original (with or without the prefix): "<prefix>.dlq.<bare original>".
func (s Subjects) DeadLetter(original string) string {
	bare, _ := s.Bare(original)
	return s.Subject("dlq." + bare)
}

// For returns the subject e is published on.
func (s Subjects) For(e Event) string {
	switch e := e.(type) {
	case *DeadLettered:
		return s.DeadLetter(e.OriginalSubject)
	case *BatchQueued:
		return s.BatchQueued(e.ContextNIP)
	}
	return s.Subject(e.EventType())
}

// Wildcards returns the subjects a stream must capture to hold every event
// and dead letter: invoice.>, session.>, query.>, dlq.> and the sender's batch.> under the
// prefix.
func (s Subjects) Wildcards() []string {
	return []string{
		s.Subject("invoice.>"), s.Subject("session.>"),
		s.Subject("query.>"), s.Subject("dlq.>"), s.Subject("batch.>"),
	}
}
