package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// kvBuckets are the pipeline's KV buckets and their TTLs, as OpenWithTelemetry ensures them.
// leader: read from the bucket's leader (natsx.KVLeaderReads).
var kvBuckets = []struct {
	what   string
	ttl    time.Duration
	leader bool
}{{"STATE", 90 * 24 * time.Hour, true}, {"LIMITS", 2 * time.Hour, false}, {"MARKS", 0, true}, {"SESSIONS", 24 * time.Hour, true}}

// consumerConfig is the named worker's consumer and run settings, for Run and for provisioning
// the consumer ahead (one description, so that natsx.BindOnly finds what it expects).
func (r *Runtime) consumerConfig(name string) worker.Config {
	subj := r.Settings.NATS.Subjects()
	switch name {
	case Sender:
		return r.workerConfig(Sender, 256, subj.InvoiceSubmitted())
	case SenderBatch:
		// The batch assembler holds the queue messages of the invoices in its packages until
		// each package is sent, without a handler each: up to two packages at once.
		cfg := r.workerConfig(SenderBatch, 16, subj.BatchQueuedAll())
		cfg.MaxAckPending = r.Settings.Batch.MaxAckPending()
		return cfg
	case Poller:
		cfg := r.workerConfig(Poller, 32, subj.InvoiceSent(), subj.SessionClosed())
		// Every invoice KSeF is still processing holds a snoozed message, and snoozed messages
		// count toward MaxAckPending: room for ten full batch packages stuck in processing
		// before other contexts' invoices wait (nats-server#6093). A package failed as a whole
		// is resolved at once (its invoices are put back), so it holds none for long.
		cfg.MaxAckPending = 100_000
		return cfg
	case Downloader:
		return r.workerConfig(Downloader, max(r.Settings.Downloader.Concurrency, 1), subj.QueryRequested())
	case Visualizer:
		return r.workerConfig(Visualizer, 4, subj.InvoiceAccepted(), subj.InvoiceDownloaded(), subj.InvoiceVisualize())
	}
	panic("pipeline: no consumer for worker " + name)
}

// consumerConfigs are the durable consumers Run creates (the sender's batch assembler's unless
// batch is off).
func (r *Runtime) consumerConfigs() []worker.Config {
	names := append(Workers(), SenderBatch)
	if r.Settings.Batch.Disabled {
		names = Workers()
	}
	out := make([]worker.Config, len(names))
	for i, n := range names {
		out[i] = r.consumerConfig(n)
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
	// Every bucket is replicated like the stream (see OpenWithTelemetry).
	replicas := natsx.KVReplicas(cfg.WithDefaults().Replicas)
	for _, b := range kvBuckets {
		name := kvName(cfg, b.what)
		opts := []natsx.KVOption{replicas}
		if b.leader {
			opts = append(opts, natsx.KVLeaderReads())
		}
		if _, err := natsx.EnsureKV(ctx, js, name, b.ttl, opts...); err != nil {
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
