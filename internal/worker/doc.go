// Package worker is the consume loop shared by the pipeline's workers
// (sender, poller, downloader, visualizer): one durable JetStream pull
// consumer per worker, a bounded pool of handlers, middleware, and control
// errors that map a handler's result onto JetStream:
//
//	handler returns          JetStream                 failure budget
//	nil                      Ack                       cleared
//	Snooze(d)                NakWithDelay(d)           unchanged
//	Retry(err) / any error   NakWithDelay(backoff)     +1; at MaxFailures: dead letter, Term
//	RetryAfter(d, err)       NakWithDelay(d)           +1; as above
//	Permanent(err)           dead letter, Term         cleared
//	DeadLetter(kind, err)    dead letter, Term         cleared
//	panic                    as an error (kind "panic" when it spends the budget)
//	undecodable message      dead letter (malformed, unknown_version, invalid), Term
//	event of another type    dead letter (invalid), Term: handlers made with For or Routes
//	m.Hold(), then nil       held: InProgress heartbeats until settle(err), then as above for err
//
// A held message frees its handler's slot: a batch assembler can keep thousands of messages
// unacknowledged, each acked only once its package is sent, without a goroutine each (see
// Message.Hold; the consumer's MaxAckPending must allow them).
//
// A dead letter is an events.DeadLettered published on
// <prefix>.dlq.<original subject>, carrying the original body, headers,
// reason and kind.
//
// # Why failures are counted outside JetStream
//
// JetStream counts deliveries, and a snooze is a delivery: a poller that
// snoozes a message every few seconds while KSeF processes a session would
// hit any MaxDeliver long before anything failed. Consumers therefore have
// MaxDeliver unlimited, and the runtime counts failures per message in a
// KV bucket (<stream>_failures, key <worker>.<stream sequence>), with
// compare-and-set so that concurrent instances do not lose counts.
// Entries expire after FailureTTL. If the bucket is unreachable the message
// is retried with backoff and never dead-lettered on a guess.
//
// # Delivery
//
// At least once: a handler may see a message again (a crash before the
// ack, an ack lost on the way). Handlers must be idempotent; the events'
// deterministic ids make republishing their results harmless.
//
// # Shutdown
//
// When Run's context is cancelled it stops pulling, hands back a message
// fetched but not started, waits for running handlers (whose context stays
// alive for DrainTimeout) and held messages (within the same DrainTimeout;
// those still held then are handed back for redelivery), settles them, and
// returns.
package worker
