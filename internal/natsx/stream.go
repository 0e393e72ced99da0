package natsx

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName returns the name of the pipeline's stream: "KSEF" without a
// prefix, otherwise "KSEF_" and the prefix in upper case with characters
// other than letters and digits replaced by "_" ("acme.prod" ->
// "KSEF_ACME_PROD").
func StreamName(prefix string) string {
	if prefix == "" {
		return "KSEF"
	}
	b := []byte("KSEF_" + strings.ToUpper(prefix))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

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

// EnsureStreams creates the pipeline's stream or updates it to cfg.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := StreamConfig(cfg)
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("natsx: stream %s: %w", sc.Name, err)
	}
	return s, nil
}

// EnsureKV creates or updates a key-value bucket (file storage, one
// revision per key, one replica) whose entries expire after ttl (0: never).
// The pipeline uses such buckets for per-invoice state, worker failure
// counts and shared rate limits.
func EnsureKV(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:  name,
		TTL:     ttl,
		History: 1,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("natsx: kv %s: %w", name, err)
	}
	return kv, nil
}
