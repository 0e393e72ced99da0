package downloader

import (
	"context"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Reserver is the shared request limiter (ratelimit.Limiter): Reserve grants a request now (0)
// or says how long to wait; Throttled records a 429 so that every replica pauses.
type Reserver interface {
	Reserve(ctx context.Context, nip string, op ksef.Operation) (time.Duration, error)
	Throttled(ctx context.Context, nip string, op ksef.Operation, retryAfter time.Duration) error
}

// LimitWaitError is returned through the KSeF client when the request limit asks for a longer
// wait than a handler should block for (ksefInvoiceQueryStart allows 20 an hour): the message is
// snoozed for Wait instead.
type LimitWaitError struct {
	Op   ksef.Operation
	Wait time.Duration
}

func (e *LimitWaitError) Error() string {
	return fmt.Sprintf("downloader: request limit of %s: next slot in %s", e.Op, e.Wait.Round(time.Second))
}

// BoundedLimiter returns the ksef.Limiter of one context that waits for the shared limiter up
// to maxWait at a time and returns a *LimitWaitError past it.
func BoundedLimiter(r Reserver, nip string, maxWait time.Duration) ksef.Limiter {
	return &boundedLimiter{r: r, nip: nip, maxWait: maxWait, sleep: sleepCtx}
}

type boundedLimiter struct {
	r       Reserver
	nip     string
	maxWait time.Duration
	sleep   func(ctx context.Context, d time.Duration) error
}

func (b *boundedLimiter) Wait(ctx context.Context, op ksef.Operation) error {
	for {
		d, err := b.r.Reserve(ctx, b.nip, op)
		if err != nil {
			return err
		}
		if d <= 0 {
			return nil
		}
		if d > b.maxWait {
			return &LimitWaitError{Op: op, Wait: d}
		}
		if err := b.sleep(ctx, d); err != nil {
			return err
		}
	}
}

func (b *boundedLimiter) Throttled(ctx context.Context, op ksef.Operation, retryAfter time.Duration) {
	// Best effort: if the store is down the next Wait fails anyway.
	_ = b.r.Throttled(ctx, b.nip, op, retryAfter)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
