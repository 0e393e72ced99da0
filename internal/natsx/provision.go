package natsx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Retry delays: the first retry after RetryBase, doubling up to RetryMax (each with jitter), and
// one attempt may take at most AttemptTimeout.
const (
	RetryBase      = 100 * time.Millisecond
	RetryMax       = 5 * time.Second
	AttemptTimeout = 5 * time.Second
)

// Retry runs op until it succeeds, fails with an error that is not [ProvisionTransient], or ctx ends. Each
// attempt gets a context of its own, bounded by AttemptTimeout; between attempts it waits with
// exponential back-off and logs the failure (zerolog.Ctx(ctx), at warn) naming what. It is how
// the pipeline provisions its stream, buckets and consumers: on a fresh or changing cluster
// (no meta leader yet, peers still joining, another worker creating the same stream) those
// requests fail for a while and then succeed, and a worker waits rather than exits.
func Retry(ctx context.Context, what string, op func(context.Context) error) error {
	log := zerolog.Ctx(ctx)
	delay := RetryBase
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info().Str("what", what).Int("attempts", attempt).Msg("nats provisioning succeeded after retries")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		if !ProvisionTransient(err) {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		log.Warn().Err(err).Str("what", what).Int("attempt", attempt).Dur("retry_in", wait).
			Msg("nats provisioning failed; retrying (the cluster may still be forming)")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		delay = min(2*delay, RetryMax)
	}
}

// provisionCodes are the JetStream API errors, besides those [Transient] knows, that a forming or
// changing cluster answers a provisioning request with for a while.
var provisionCodes = map[jetstream.ErrorCode]bool{
	10005: true, // no suitable peers for placement (peers still joining)
	10009: true, // JetStream cluster can not handle request
	10023: true, // insufficient resources (peers still joining)
	10058: true, // stream name already in use with a different configuration (a concurrent create)
	10118: true, // stream is offline
	10119: true, // consumer is offline
	10194: true, // stream is offline: reason
	10195: true, // consumer is offline: reason
}

// ProvisionTransient reports whether a provisioning request (creating or updating a stream,
// bucket or consumer) that failed with err may succeed later: what [Transient] says (timeouts,
// no responders, disconnection, JetStream's 503 such as "temporarily unavailable" while there is
// no meta leader), and "insufficient resources" or "no suitable peers" while peers join, a
// stream name taken by a concurrent create with another configuration, an offline stream.
// Configuration errors (an invalid configuration, replicas on a server that is not clustered,
// permissions) are not.
func ProvisionTransient(err error) bool {
	if Transient(err) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && provisionCodes[apiErr.ErrorCode]
}
