package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// kvBuckets are the pipeline's KV buckets and their TTLs, as OpenWithTelemetry ensures them.
var kvBuckets = []struct {
	what string
	ttl  time.Duration
}{{"STATE", 90 * 24 * time.Hour}, {"LIMITS", 2 * time.Hour}, {"MARKS", 0}, {"SESSIONS", 24 * time.Hour}}

// consumerConfigs are the durable consumers Run creates (the sender's batch assembler's unless
// batch is off), for provisioning them ahead.
func (r *Runtime) consumerConfigs() []worker.Config {
	subj := r.Settings.NATS.Subjects()
	out := []worker.Config{
		r.workerConfig(Sender, 256, subj.InvoiceSubmitted()),
		r.workerConfig(Poller, 32, subj.InvoiceSent(), subj.SessionClosed()),
		r.workerConfig(Downloader, max(r.Settings.Downloader.Concurrency, 1), subj.QueryRequested()),
		r.workerConfig(Visualizer, 4, subj.InvoiceAccepted(), subj.InvoiceDownloaded(), subj.InvoiceVisualize()),
	}
	if !r.Settings.Batch.Disabled {
		cfg := r.workerConfig(SenderBatch, 16, subj.BatchQueuedAll())
		cfg.MaxAckPending = r.Settings.Batch.MaxHeld()
		out = append(out, cfg)
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
	for _, b := range kvBuckets {
		name := kvName(cfg, b.what)
		if _, err := natsx.EnsureKV(ctx, js, name, b.ttl); err != nil {
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
