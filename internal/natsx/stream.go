package natsx

import (
	"context"
	"errors"
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
	return ensureStream(ctx, js, cfg, StreamConfig)
}

// ERPStreamName is the name of the ERP systems' stream for subject prefix prefix: "KSEF-ERP" (a
// dash, which StreamName never writes, so that no prefix's stream can have the name).
func ERPStreamName(prefix string) string { return StreamName(prefix) + "-ERP" }

// ERPStreamConfig returns the configuration EnsureERPStream applies: a mirror of the pipeline's
// stream (same events, sequence numbers and age limit) on which the ERP systems' NATS user may
// create and delete consumers. Consumer names are one subject token, so a user's consumer rights
// cannot be confined to a name prefix; confined to a stream of its own, they are, and the workers'
// durable consumers on the pipeline's stream are out of its reach by construction.
func ERPStreamConfig(cfg Config) jetstream.StreamConfig {
	sc := StreamConfig(cfg)
	sc.Mirror = &jetstream.StreamSource{Name: sc.Name}
	sc.Name, sc.Description = ERPStreamName(cfg.SubjectPrefix), "ksef-pipeline events, mirrored for the ERP systems' readers"
	// A mirror takes no subjects of its own and no publishes to deduplicate.
	sc.Subjects, sc.Duplicates = nil, 0
	return sc
}

// EnsureERPStream creates the ERP systems' mirror (ERPStreamConfig) or updates it to cfg,
// retrying transient failures as EnsureStreams does. The pipeline's stream must exist.
func EnsureERPStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	return ensureStream(ctx, js, cfg, ERPStreamConfig)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg Config, config func(Config) jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := config(cfg)
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
type KVOption func(*kvOptions)

type kvOptions struct {
	cfg         jetstream.KeyValueConfig
	leaderReads bool
}

// KVReplicas gives the bucket n replicas (0: 1). The pipeline's buckets take the stream's
// replicas (Config.Replicas), so that they survive what the stream survives.
func KVReplicas(n int) KVOption {
	return func(o *kvOptions) { o.cfg.Replicas = max(n, 1) }
}

// KVLeaderReads makes every read of the bucket go to its stream's leader (the bucket's stream
// without allow_direct). A KV bucket made by nats.go lets any replica answer a get ("direct
// get"), and a follower answers with what it has applied so far: with several replicas a get
// right after a write, by the writer or anyone else, may return the value before it. A
// compare-and-set then fails and is looked at again, but a decision taken on a read alone (this
// queue item is stale: ack it) is taken on the past. The pipeline's state, session ledger and
// download marks are read this way; a read costs a round trip through the leader.
//
// Such a bucket's stream is made here, never by nats.go, with allow_direct off from the start:
// a handle reads directly or not as its stream's info said when it was bound, and a handle bound
// while direct gets were on sends them on, unanswered, once they are off.
func KVLeaderReads() KVOption { return func(o *kvOptions) { o.leaderReads = true } }

// EnsureKV creates or updates a key-value bucket (file storage, one revision per key, one
// replica unless KVReplicas says more) whose entries expire after ttl (0: never). The pipeline
// uses such buckets for per-invoice state, worker failure counts and shared rate limits.
// Transient failures are retried with back-off until ctx ends, as in EnsureStreams. A bucket
// that exists as asked is bound as it is, never updated.
func EnsureKV(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, opts ...KVOption) (jetstream.KeyValue, error) {
	o := kvOptions{cfg: jetstream.KeyValueConfig{
		Bucket:   name,
		TTL:      ttl,
		History:  1,
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	}}
	for _, opt := range opts {
		opt(&o)
	}
	kc := o.cfg
	var kv jetstream.KeyValue
	err := Retry(ctx, "kv "+name, func(ctx context.Context) error {
		var err error
		if o.leaderReads {
			kv, err = ensureLeaderKV(ctx, js, kc)
			return err
		}
		kv, err = js.KeyValue(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			kv, err = js.CreateOrUpdateKeyValue(ctx, kc)
		case err == nil:
			var st jetstream.KeyValueStatus
			if st, err = kv.Status(ctx); err == nil && !sameKV(st, kc) {
				kv, err = js.CreateOrUpdateKeyValue(ctx, kc)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natsx: kv %s: %w", name, err)
	}
	return kv, nil
}

// kvStream is the stream nats.go makes for a bucket of kc (its prepareKeyValueConfig, for what
// EnsureKV sets), without direct gets.
func kvStream(kc jetstream.KeyValueConfig) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if kc.TTL > 0 && kc.TTL < dup {
		dup = kc.TTL
	}
	return jetstream.StreamConfig{
		Name: "KV_" + kc.Bucket, Subjects: []string{"$KV." + kc.Bucket + ".>"},
		MaxMsgsPerSubject: int64(max(kc.History, 1)), MaxBytes: -1, MaxAge: kc.TTL, MaxMsgSize: -1,
		Storage: kc.Storage, Replicas: max(kc.Replicas, 1), AllowRollup: true, DenyDelete: true,
		Duplicates: dup, MaxMsgs: -1, MaxConsumers: -1, Discard: jetstream.DiscardNew,
	}
}

// errDirectGets: the bucket's stream allowed direct gets when its handle was bound (someone
// turned them on meanwhile); the next attempt turns them off again.
var errDirectGets = fmt.Errorf("natsx: bucket bound while its stream allowed direct gets: %w", jetstream.ErrStreamNameAlreadyInUse)

// ensureLeaderKV makes or binds a bucket read through its leader (KVLeaderReads). Workers
// starting at once all create the same stream, which JetStream takes as one; a bucket made
// otherwise (by an earlier version, with direct gets) is updated.
func ensureLeaderKV(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	want := kvStream(kc)
	st, err := js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		// Made meanwhile with another configuration: ErrStreamNameAlreadyInUse, retried.
		if _, err := js.CreateStream(ctx, want); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if c := st.CachedInfo().Config; c.AllowDirect || c.MaxAge != want.MaxAge ||
			c.MaxMsgsPerSubject != want.MaxMsgsPerSubject || c.Replicas != want.Replicas {
			c.AllowDirect, c.MaxAge, c.MaxMsgsPerSubject, c.Replicas, c.Duplicates =
				false, want.MaxAge, want.MaxMsgsPerSubject, want.Replicas, want.Duplicates
			if _, err := js.UpdateStream(ctx, c); err != nil {
				return nil, err
			}
		}
	}
	kv, err := js.KeyValue(ctx, kc.Bucket)
	if err != nil {
		return nil, err
	}
	// The handle reads as its cached stream info says; that info is the one checked here.
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if bs, ok := status.(*jetstream.KeyValueBucketStatus); !ok || bs.StreamInfo().Config.AllowDirect {
		return nil, errDirectGets
	}
	return kv, nil
}

// sameKV reports whether the bucket has what kc asks for of what EnsureKV sets.
func sameKV(st jetstream.KeyValueStatus, kc jetstream.KeyValueConfig) bool {
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return false
	}
	c := bs.StreamInfo().Config
	return c.MaxAge == kc.TTL && c.MaxMsgsPerSubject == int64(kc.History) && c.Replicas == kc.Replicas
}
