package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// ensureKV creates or updates the pipeline's KV bucket b as every process expects it: replicated
// like the stream (losing the node holding a bucket of one replica would stop every worker,
// whatever the stream survives); an invoice's state kept 90 days, limiter windows two hours
// (they reach back one), open sessions a day, marks forever; and the buckets whose reads decide
// (state, sessions, marks) read from their leader, since a follower may not have the last write.
func ensureKV(ctx context.Context, js jetstream.JetStream, cfg natsx.Config, b names.Bucket) (jetstream.KeyValue, error) {
	opts := []natsx.KVOption{natsx.KVReplicas(cfg.WithDefaults().Replicas)}
	if b != names.Limits {
		opts = append(opts, natsx.KVLeaderReads())
	}
	var ttl time.Duration
	switch b {
	case names.State:
		ttl = 90 * 24 * time.Hour
	case names.Limits:
		ttl = 2 * time.Hour
	case names.Sessions:
		ttl = 24 * time.Hour
	}
	return natsx.EnsureKV(ctx, js, names.KV(cfg.SubjectPrefix, b), ttl, opts...)
}

// consumerConfigs are the durable consumers Run creates, as the workers describe them (the
// sender's batch assembler's unless batch is off): one description, so that natsx.BindOnly
// finds what it expects.
func (r *Runtime) consumerConfigs() []worker.Config {
	var out []worker.Config
	for _, name := range Workers() {
		for _, spec := range workers()[name].consumers(r.Settings) {
			out = append(out, r.workerConfig(spec))
		}
	}
	return out
}

// Provision creates or updates, as a user allowed to, everything the workers only look up when
// started with KSEF_NATS_PROVISIONED (natsx.BindOnly): the stream, the KV buckets, and each
// worker's durable consumer with its failure-count bucket; and the ERP systems' mirror of the
// stream (natsx.EnsureERPStream). It is idempotent: run it before the
// workers and again after changing a setting that shapes them (prefix, AckWait, batch).
func Provision(ctx context.Context, s Settings) ([]string, error) {
	cfg := s.NATS
	cfg.Provisioned = false
	nc, js, err := natsx.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var made []string
	st, err := natsx.EnsureStreams(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	made = append(made, "stream "+st.CachedInfo().Config.Name)
	// The ERP systems read a mirror, where their user may manage consumers (natsperm).
	erp, err := natsx.EnsureERPStream(ctx, js, cfg)
	if err != nil {
		return made, err
	}
	made = append(made, "stream "+erp.CachedInfo().Config.Name)
	for _, b := range names.Buckets() {
		if _, err := ensureKV(ctx, js, cfg, b); err != nil {
			return made, err
		}
		made = append(made, "kv "+names.KV(cfg.SubjectPrefix, b))
	}
	r := &Runtime{Settings: s}
	for _, wc := range r.consumerConfigs() {
		if err := worker.Ensure(ctx, js, wc); err != nil {
			return made, fmt.Errorf("provisioning %s: %w", wc.Name, err)
		}
		made = append(made, "consumer "+wc.Name)
	}
	return made, nil
}
