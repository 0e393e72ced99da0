package natsx

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
)

// StreamName returns the name of the pipeline's stream (see names.Stream).
func StreamName(prefix string) string { return names.Stream(prefix) }

// StreamConfig returns the configuration EnsureStreams applies: one stream
// over all events and dead letters under the prefix, limits retention
// (events are kept for StreamMaxAge whatever consumers do, so audit readers
// and new consumers can replay), file storage and the duplicate window.
func StreamConfig(cfg Config) jetstream.StreamConfig {
	cfg = cfg.WithDefaults()
	return jetstream.StreamConfig{
		Name:        StreamName(cfg.SubjectPrefix),
		Description: "ksef-pipeline events",
		Subjects:    cfg.Subjects().Wildcards(),
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.StreamMaxAge,
		Duplicates:  cfg.DuplicateWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
	}
}

// EnsureStreams creates the pipeline's stream or updates it to cfg (with cfg.Replicas replicas).
// Transient failures (a cluster without a meta leader yet, peers still joining, another worker
// creating the same stream) are retried with back-off until ctx ends (see [Retry]).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := StreamConfig(cfg)
	var s jetstream.Stream
	err := Retry(ctx, "stream "+sc.Name, func(ctx context.Context) error {
		var err error
		s, err = js.CreateOrUpdateStream(ctx, sc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natsx: stream %s: %w", sc.Name, err)
	}
	return s, nil
}

// KVOption changes a bucket's configuration (see EnsureKV).
type KVOption func(*jetstream.KeyValueConfig)

// KVReplicas gives the bucket n replicas (0: 1). The pipeline's buckets take the stream's
// replicas (Config.Replicas), so that they survive what the stream survives.
func KVReplicas(n int) KVOption {
	return func(c *jetstream.KeyValueConfig) { c.Replicas = max(n, 1) }
}

// EnsureKV creates or updates a key-value bucket (file storage, one revision per key, one
// replica unless KVReplicas says more) whose entries expire after ttl (0: never). The pipeline
// uses such buckets for per-invoice state, worker failure counts and shared rate limits.
// Transient failures are retried with back-off until ctx ends, as in EnsureStreams.
func EnsureKV(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, opts ...KVOption) (jetstream.KeyValue, error) {
	kc := jetstream.KeyValueConfig{
		Bucket:   name,
		TTL:      ttl,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	}
	for _, o := range opts {
		o(&kc)
	}
	var kv jetstream.KeyValue
	err := Retry(ctx, "kv "+name, func(ctx context.Context) error {
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, kc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natsx: kv %s: %w", name, err)
	}
	return kv, nil
}
