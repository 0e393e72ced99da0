package downloader

import (
	"context"
	"errors"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// WorkerName is the downloader's durable consumer and dead-letter stage.
const WorkerName = names.Downloader

// Consumer describes the downloader's durable consumer, without a handler (for provisioning it
// ahead): concurrency is Settings.Concurrency, the queries one replica runs at once.
func Consumer(subj events.Subjects, concurrency int) worker.Spec {
	return worker.Spec{Name: WorkerName, Subjects: []string{subj.QueryRequested()}, Concurrency: max(concurrency, 1)}
}

// Spec is the downloader's consumer with its handler.
func (d *Downloader) Spec(subj events.Subjects, concurrency int) worker.Spec {
	spec := Consumer(subj, concurrency)
	spec.Handler = d.Handler()
	return spec
}

// Handler returns the worker.Handler of query.requested. worker.Run's heartbeat keeps the
// message alive while a query runs.
func (d *Downloader) Handler() worker.Handler {
	return worker.For(func(ctx context.Context, req *events.QueryRequested, _ *worker.Message) error {
		done, err := d.Download(ctx, req, nil)
		if err == nil {
			worker.Logger(ctx).Info().Str("query_id", req.QueryID).Int("invoices", done.InvoiceCount).
				Int("parts", len(done.Parts)).Int("continuations", done.TruncatedContinuations).Msg("query completed")
		}
		return Outcome(err)
	})
}

// Outcome maps Download's result onto the worker's control errors: a *RequestError is
// dead-lettered at once with its reason, a *SnoozeError snoozes (not a failure), anything else
// is retried with backoff and dead-lettered when the failure budget is spent.
func Outcome(err error) error {
	var re *RequestError
	var se *SnoozeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return worker.Permanent(err)
	case errors.As(err, &se):
		return worker.Snooze(se.After)
	}
	return err
}
