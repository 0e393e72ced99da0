package natsx

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// inboxPrefix is the custom inbox prefix of the connection: InboxPrefix, else "_INBOX_<User>"
// for a user, else "" (nats.go's "_INBOX").
func (c Config) inboxPrefix() string {
	if c.InboxPrefix != "" {
		return c.InboxPrefix
	}
	if c.User != "" {
		return "_INBOX_" + c.User
	}
	return ""
}

// BindOnly wraps js so that the pipeline's "create or update" of streams, KV buckets and
// consumers only looks them up: for a user allowed INFO on them and no more. What is missing is
// an error naming the provisioning step; a consumer whose filter, AckWait or MaxAckPending
// differs from the one asked for is an error too, so that a provisioning step and the workers cannot silently disagree.
func BindOnly(js jetstream.JetStream) jetstream.JetStream { return bindOnly{js} }

type bindOnly struct{ jetstream.JetStream }

func (b bindOnly) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := b.Stream(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("natsx: stream %s not provisioned (run ksefctl nats provision): %w", cfg.Name, err)
	}
	return s, nil
}

func (b bindOnly) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := b.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("natsx: KV bucket %s not provisioned (run ksefctl nats provision): %w", cfg.Bucket, err)
	}
	return kv, nil
}

func (b bindOnly) CreateStream(_ context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, fmt.Errorf("natsx: stream %s not provisioned (run ksefctl nats provision)", cfg.Name)
}

// UpdateStream is refused: a stream provisioned otherwise than a worker needs (a bucket still
// answering direct gets, see KVLeaderReads) is for the provisioning step to change.
func (b bindOnly) UpdateStream(_ context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, fmt.Errorf("natsx: stream %s is not provisioned as this version needs (run ksefctl nats provision)", cfg.Name)
}

func (b bindOnly) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	c, err := b.Consumer(ctx, stream, name)
	if err != nil {
		return nil, fmt.Errorf("natsx: consumer %s on %s not provisioned (run ksefctl nats provision): %w", name, stream, err)
	}
	got := c.CachedInfo().Config
	want := filters(cfg)
	if have := filters(got); !slices.Equal(slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(want))) {
		return nil, fmt.Errorf("natsx: consumer %s on %s filters %v, the worker wants %v: provision again", name, stream, have, want)
	}
	if (cfg.AckWait != 0 && got.AckWait != cfg.AckWait) || (cfg.MaxAckPending != 0 && got.MaxAckPending != cfg.MaxAckPending) {
		return nil, fmt.Errorf("natsx: consumer %s on %s has AckWait %s and MaxAckPending %d, the worker wants %s and %d: provision again with its settings",
			name, stream, got.AckWait, got.MaxAckPending, cfg.AckWait, cfg.MaxAckPending)
	}
	return c, nil
}

func filters(c jetstream.ConsumerConfig) []string {
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return c.FilterSubjects
}
