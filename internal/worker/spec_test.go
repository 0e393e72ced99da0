package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestRoutes: each event goes to its type's handler; any other is dead-lettered as invalid, the
// same way for every worker, with a reason naming what was wanted.
func TestRoutes(t *testing.T) {
	var got []string
	h := Routes(
		On(func(_ context.Context, e *events.InvoiceSent, _ *Message) error {
			got = append(got, "sent")
			return nil
		}),
		On(func(_ context.Context, e *events.SessionClosed, m *Message) error {
			got = append(got, "closed")
			return Snooze(0)
		}),
	)
	ctx := context.Background()
	if err := h(ctx, &Message{Event: &events.InvoiceSent{}}); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, &Message{Event: &events.SessionClosed{}}); !IsSnooze(err) {
		t.Fatalf("the handler's error was not returned: %v", err)
	}
	if strings.Join(got, ",") != "sent,closed" {
		t.Fatalf("handled %v", got)
	}
	err := h(ctx, &Message{Subject: "ksef.invoice.accepted", Event: &events.InvoiceAccepted{}})
	if DeadLetterKind(err) != events.KindInvalid {
		t.Fatalf("wrong event: %v (kind %s), want a dead letter of kind invalid", err, DeadLetterKind(err))
	}
	for _, want := range []string{"*events.InvoiceAccepted", "ksef.invoice.accepted", "*events.InvoiceSent or *events.SessionClosed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reason %q lacks %q", err, want)
		}
	}
	one := For(func(context.Context, *events.QueryRequested, *Message) error { return nil })
	if err := one(ctx, &Message{Event: &events.InvoiceSent{}}); DeadLetterKind(err) != events.KindInvalid {
		t.Errorf("For: %v, want a dead letter of kind invalid", err)
	}
}

// TestSpecConfig: a spec's consumer over the runtime's common settings; a configured
// concurrency overrides the worker's default.
func TestSpecConfig(t *testing.T) {
	spec := Spec{Name: "w", Subjects: []string{"a"}, Concurrency: 8, MaxAckPending: 99}
	c := spec.Config(Config{MaxFailures: 3})
	if c.Name != "w" || c.Subjects[0] != "a" || c.Concurrency != 8 || c.MaxAckPending != 99 || c.MaxFailures != 3 {
		t.Errorf("%+v", c)
	}
	if c := spec.Config(Config{Concurrency: 2}); c.Concurrency != 2 {
		t.Errorf("concurrency %d, want the configured 2", c.Concurrency)
	}
}
