package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// kvTTL is how long an entry of each KV bucket is kept: an invoice's state for 90 days; limiter
// windows reach back an hour, so a key idle for two is worthless; marks forever.
func kvTTL(b names.Bucket) time.Duration {
	switch b {
	case names.State:
		return 90 * 24 * time.Hour
	case names.Limits:
		return 2 * time.Hour
	case names.Sessions:
		return 24 * time.Hour
	}
	return 0
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
// worker's durable consumer with its failure-count bucket. It is idempotent: run it before the
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
	// Every bucket is replicated like the stream (see OpenWithTelemetry).
	replicas := natsx.KVReplicas(cfg.WithDefaults().Replicas)
	for _, b := range names.Buckets() {
		name := names.KV(cfg.SubjectPrefix, b)
		if _, err := natsx.EnsureKV(ctx, js, name, kvTTL(b), replicas); err != nil {
			return made, err
		}
		made = append(made, "kv "+name)
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
