// Package invariant checks the pipeline's promise on a finished run: KSeF received each
// submitted invoice at most once, and each has exactly one terminal event (invoice.accepted,
// invoice.rejected, or a dead letter carrying its id), as a consumer deduplicating by event_id
// sees them. Every end-to-end and reliability row judges its run with Check.
package invariant

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Invoice is one submitted invoice: the ERP's id, and the key under which the emulator counts
// what KSeF received of it (emulator.SendKey).
type Invoice struct {
	ID      string
	SendKey string
}

// Report is what became of a run's invoices.
type Report struct {
	Invoices, Accepted, Rejected, DeadLettered int
	// Lost: no terminal event, or accepted without KSeF having received it.
	Lost int
	// SentTwice: KSeF received the invoice more than once.
	SentTwice int
	// Duplicates: more than one distinct terminal event (two acceptances with different ids,
	// accepted and rejected, ...).
	Duplicates int
	// DeadLetters counts every dead letter of the run, of invoices or not.
	DeadLetters int
	// Problems describes the first few violations of each kind.
	Problems []string
}

// Check judges a run: invoices submitted, sends as the emulator counted them (Stats().Sends), and
// every event the stream carried.
func Check(invoices []Invoice, sends map[string]int, evs []events.Event) Report {
	r := Report{Invoices: len(invoices)}
	terminal := map[string]map[string]string{} // invoice id -> event id -> type
	add := func(m *events.Meta, typ string) {
		if terminal[m.InvoiceID] == nil {
			terminal[m.InvoiceID] = map[string]string{}
		}
		terminal[m.InvoiceID][m.EventID] = typ
	}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *events.InvoiceAccepted:
			add(&ev.Meta, events.TypeInvoiceAccepted)
		case *events.InvoiceRejected:
			add(&ev.Meta, events.TypeInvoiceRejected)
		case *events.DeadLettered:
			r.DeadLetters++
			r.note("dead letter from %s of %s (%s): %s", ev.Stage, ev.OriginalSubject, ev.ErrorKind, ev.Reason)
			if ev.InvoiceID != "" {
				add(&ev.Meta, events.TypeDeadLettered)
			}
		}
	}
	for _, inv := range invoices {
		n := sends[inv.SendKey]
		outs := terminal[inv.ID]
		types := slices.Sorted(maps.Values(outs))
		switch {
		case len(outs) == 0:
			r.Lost++
			r.note("%s: no terminal event (KSeF received it %d times)", inv.ID, n)
		case slices.Contains(types, events.TypeInvoiceAccepted):
			r.Accepted++
			if n == 0 {
				r.Lost++ // an acceptance without a send is not an invoice in KSeF
				r.note("%s: accepted, but KSeF never received it", inv.ID)
			}
		case slices.Contains(types, events.TypeInvoiceRejected):
			r.Rejected++
		default:
			r.DeadLettered++
		}
		if len(outs) > 1 {
			r.Duplicates++
			r.note("%s: %d distinct terminal events %v", inv.ID, len(outs), types)
		}
		if n > 1 {
			r.SentTwice++
			r.note("%s: KSeF received it %d times", inv.ID, n)
		}
	}
	return r
}

func (r *Report) note(format string, args ...any) {
	if len(r.Problems) < 30 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Want is what a run should end with besides the invariants: how many invoices are rejected and
// dead-lettered (the rest accepted), and how many dead letters the run may have in all.
type Want struct {
	Rejected, DeadLettered int
	// DeadLetters: dead letters of any message allowed (-1: any number).
	DeadLetters int
}

// Err is nil when the run kept the invariants (nothing lost, nothing received twice, one
// terminal event each) and ended as wanted; otherwise it says how it did not.
func (r Report) Err(w Want) error {
	if r.Lost == 0 && r.SentTwice == 0 && r.Duplicates == 0 && r.Rejected == w.Rejected &&
		r.DeadLettered == w.DeadLettered && r.Accepted+r.Rejected+r.DeadLettered == r.Invoices &&
		(w.DeadLetters < 0 || r.DeadLetters <= w.DeadLetters) {
		return nil
	}
	return fmt.Errorf("%s:\n  %s", r, strings.Join(r.Problems, "\n  "))
}

func (r Report) String() string {
	return fmt.Sprintf("%d invoices: %d accepted, %d rejected, %d dead-lettered, %d lost, %d received twice, %d with more than one terminal event; %d dead letters in all",
		r.Invoices, r.Accepted, r.Rejected, r.DeadLettered, r.Lost, r.SentTwice, r.Duplicates, r.DeadLetters)
}
