package sender

import (
	"context"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Consumers describes the sender's durable consumers, without handlers (for provisioning them
// ahead): invoice.submitted and, unless batches are off, the batch assembler's batch.queued.
func Consumers(subj events.Subjects, batch BatchConfig) []worker.Spec {
	specs := []worker.Spec{{Name: names.Sender, Subjects: []string{subj.InvoiceSubmitted()}, Concurrency: 256}}
	if !batch.Disabled {
		// The batch assembler holds the queue messages of the invoices in its packages until
		// each package is sent, without a handler each: up to two packages at once.
		specs = append(specs, worker.Spec{Name: names.SenderBatch, Subjects: []string{subj.BatchQueuedAll()},
			Concurrency: 16, MaxAckPending: batch.MaxAckPending()})
	}
	return specs
}

// Specs are the sender's consumers with their handlers: the online pool's idle closer runs
// beside the first, and each closes what it holds once stopped.
func (s *Sender) Specs(subj events.Subjects) []worker.Spec {
	specs := Consumers(subj, s.cfg.Batch)
	specs[0].Handler, specs[0].Background, specs[0].Close = s.Handle, s.RunIdleCloser, s.Close
	if len(specs) > 1 {
		specs[1].Handler, specs[1].Close = s.HandleBatch, s.CloseBatch
	}
	return specs
}

// Handle is the worker handler of invoice.submitted.
func (s *Sender) Handle(ctx context.Context, m *worker.Message) error {
	return worker.For(func(ctx context.Context, ev *events.InvoiceSubmitted, _ *worker.Message) error {
		return s.Submit(ctx, ev)
	})(ctx, m)
}
