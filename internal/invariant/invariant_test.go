package invariant

import (
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

func meta(invoice, id string) events.Meta {
	return events.Meta{InvoiceID: invoice, EventID: id}
}

func TestCheck(t *testing.T) {
	invs := []Invoice{{"A", "a"}, {"B", "b"}}
	acc := func(inv, id string) events.Event { return &events.InvoiceAccepted{Meta: meta(inv, id)} }
	rej := func(inv, id string) events.Event { return &events.InvoiceRejected{Meta: meta(inv, id)} }
	dl := func(inv, id string) events.Event {
		return &events.DeadLettered{Meta: meta(inv, id), ErrorKind: events.KindDeadline, Reason: "late"}
	}
	for _, tc := range []struct {
		name  string
		sends map[string]int
		evs   []events.Event
		want  Want
		ok    bool
		check func(r Report) bool
	}{
		{"all accepted once", map[string]int{"a": 1, "b": 1}, []events.Event{acc("A", "1"), acc("B", "2")}, Want{}, true, nil},
		{"redelivered event counts once", map[string]int{"a": 1, "b": 1}, []events.Event{acc("A", "1"), acc("A", "1"), acc("B", "2")}, Want{}, true, nil},
		{"one without outcome", map[string]int{"a": 1, "b": 1}, []events.Event{acc("A", "1")}, Want{}, false,
			func(r Report) bool { return r.Lost == 1 }},
		{"received twice", map[string]int{"a": 2, "b": 1}, []events.Event{acc("A", "1"), acc("B", "2")}, Want{}, false,
			func(r Report) bool { return r.SentTwice == 1 }},
		{"accepted and rejected", map[string]int{"a": 1, "b": 1}, []events.Event{acc("A", "1"), rej("A", "3"), acc("B", "2")}, Want{}, false,
			func(r Report) bool { return r.Duplicates == 1 }},
		{"accepted without a send", map[string]int{"b": 1}, []events.Event{acc("A", "1"), acc("B", "2")}, Want{}, false,
			func(r Report) bool { return r.Lost == 1 }},
		{"a dead letter is terminal", map[string]int{"b": 1}, []events.Event{dl("A", "9"), acc("B", "2")}, Want{DeadLettered: 1, DeadLetters: 1}, true,
			func(r Report) bool { return r.DeadLettered == 1 && r.DeadLetters == 1 }},
		{"dead letters not allowed", map[string]int{"b": 1}, []events.Event{dl("A", "9"), acc("B", "2")}, Want{DeadLettered: 1}, false, nil},
		{"rejections as wanted", map[string]int{"a": 0, "b": 1}, []events.Event{rej("A", "1"), acc("B", "2")}, Want{Rejected: 1}, true, nil},
		{"rejections not wanted", map[string]int{"a": 0, "b": 1}, []events.Event{rej("A", "1"), acc("B", "2")}, Want{}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(invs, tc.sends, tc.evs)
			err := r.Err(tc.want)
			if (err == nil) != tc.ok {
				t.Errorf("Err = %v, want ok=%v (%s)", err, tc.ok, r)
			}
			if tc.check != nil && !tc.check(r) {
				t.Errorf("report %s", r)
			}
		})
	}
}
