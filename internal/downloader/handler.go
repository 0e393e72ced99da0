package downloader

import (
	"context"
	"errors"
	"fmt"

	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// WorkerName is the downloader's durable consumer and dead-letter stage.
const WorkerName = "downloader"

// Handler returns the worker.Handler of query.requested. worker.Run's heartbeat keeps the
// message alive while a query runs.
func (d *Downloader) Handler() worker.Handler {
	return func(ctx context.Context, m *worker.Message) error {
		req, ok := m.Event.(*events.QueryRequested)
		if !ok {
			return worker.DeadLetter(events.KindInvalid, fmt.Errorf("downloader: want query.requested, got %T", m.Event))
		}
		done, err := d.Download(ctx, req, nil)
		if err == nil {
			worker.Logger(ctx).Info().Str("query_id", req.QueryID).Int("invoices", done.InvoiceCount).
				Int("parts", len(done.Parts)).Int("continuations", done.TruncatedContinuations).Msg("query completed")
		}
		return Outcome(err)
	}
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
