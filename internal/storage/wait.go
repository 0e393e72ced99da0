package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
)

// Back-off of WaitBuckets between attempts.
const (
	waitBase = 200 * time.Millisecond
	waitMax  = 10 * time.Second
)

// WaitBuckets is EnsureBuckets retried while the store answers with a
// transient error (MinIO not up yet, or still starting), until ctx ends.
// A worker starting before its storage waits, logging each failure at
// warn, rather than exiting into a crash loop; an error that retrying
// cannot mend (a bad bucket name, refused credentials) returns at once.
func WaitBuckets(ctx context.Context, s Store, buckets ...string) error {
	log := zerolog.Ctx(ctx)
	delay := waitBase
	for attempt := 1; ; attempt++ {
		err := s.EnsureBuckets(ctx, buckets...)
		if err == nil || !IsTransient(err) {
			if err == nil && attempt > 1 {
				log.Info().Int("attempts", attempt).Msg("storage reachable; buckets ensured")
			}
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		wait := delay/2 + rand.N(delay/2+1)
		log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).
			Msg("storage not reachable; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		delay = min(2*delay, waitMax)
	}
}
