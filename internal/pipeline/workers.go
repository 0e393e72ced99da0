package pipeline

import (
	"context"
	"fmt"

	"github.com/ksef-pipeline/ksef-pipeline/internal/downloader"
	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/poller"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/visualizer"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// workerDef is what the runtime knows of one worker. The worker's package describes its
// consumers (worker.Spec); the runtime only hands it the shared components it needs.
type workerDef struct {
	// consumers describes the worker's consumers without handlers (provisioning).
	consumers func(s Settings) []worker.Spec
	// buckets are the KV buckets it reads and writes; ksef: it calls KSeF (the LIMITS bucket
	// and the clients); validator: it validates invoices with the runtime's FA(3) validator;
	// schema: it needs the FA(3) schema set.
	buckets                 []names.Bucket
	ksef, validator, schema bool
}

// workers are the pipeline's workers by name: adding one is a package returning its
// worker.Spec, a line here and one in builders.
func workers() map[string]workerDef {
	return map[string]workerDef{
		names.Sender: {consumers: func(s Settings) []worker.Spec { return sender.Consumers(s.NATS.Subjects(), s.Batch) },
			buckets: []names.Bucket{names.State, names.Sessions}, ksef: true, validator: true, schema: true},
		names.Poller: {consumers: func(s Settings) []worker.Spec { return []worker.Spec{poller.Consumer(s.NATS.Subjects())} },
			buckets: []names.Bucket{names.State}, ksef: true},
		names.Downloader: {consumers: func(s Settings) []worker.Spec {
			return []worker.Spec{downloader.Consumer(s.NATS.Subjects(), s.Downloader.Concurrency)}
		}, buckets: []names.Bucket{names.Marks}, ksef: true},
		names.Visualizer: {consumers: func(s Settings) []worker.Spec { return []worker.Spec{visualizer.Consumer(s.NATS.Subjects())} },
			schema: true},
	}
}

// builders make each worker from the runtime's components. They are apart from workers so that
// what only provisions (ksefctl) links none of the workers' code.
func builders() map[string]func(r *Runtime) ([]worker.Spec, error) {
	return map[string]func(r *Runtime) ([]worker.Spec, error){
		names.Sender: (*Runtime).sender, names.Poller: (*Runtime).poller,
		names.Downloader: (*Runtime).downloader, names.Visualizer: (*Runtime).visualizer,
	}
}

// lookupWorker is the named worker's definition.
func lookupWorker(name string) (workerDef, error) {
	w, ok := workers()[name]
	if !ok {
		return w, fmt.Errorf("unknown worker %q (want one of %v)", name, Workers())
	}
	return w, nil
}

func (r *Runtime) sender() ([]worker.Spec, error) {
	batch := r.Settings.Batch
	batch.Open = r.Telemetry.Metrics.OpenSessions(telemetry.ModeBatch)
	s := sender.New(sender.Config{Layout: r.Layout, Pool: sender.PoolConfig{CloseIdle: r.Settings.SessionCloseIdle,
		Open: r.Telemetry.Metrics.OpenSessions(telemetry.ModeOnline), Ledger: sender.NewLedger(r.Sessions, nil)},
		Batch: batch, Log: r.Log.With().Str("worker", names.Sender).Logger(),
		SendLease: r.sendLease(), BlockOnWarnings: r.Settings.BlockOnWarnings, CheckNIPs: r.Settings.Production(),
		Warned: r.Telemetry.Metrics.InvoiceWarned},
		r.clientFor, r.States, r.Store, r.Validator, r.pub)
	return s.Specs(r.Settings.NATS.Subjects()), nil
}

func (r *Runtime) poller() ([]worker.Spec, error) {
	p := poller.New(poller.Config{Layout: r.Layout, Deadline: r.Settings.OutcomeDeadline, Requeue: sender.QueueItem},
		r.clientFor, r.Store, r.States, r.pub)
	return []worker.Spec{p.Spec(r.Settings.NATS.Subjects())}, nil
}

func (r *Runtime) downloader() ([]worker.Spec, error) {
	dcfg := r.Settings.Downloader.Config
	dcfg.Layout = r.Layout
	d, err := downloader.New(dcfg, downloader.Deps{
		Clients: func(ctx context.Context, nip string) (downloader.KSeF, error) { return r.clientFor(ctx, nip) },
		Store:   r.Store, Publisher: r.pub, Marks: r.Marks,
	})
	if err != nil {
		return nil, err
	}
	return []worker.Spec{d.Spec(r.Settings.NATS.Subjects(), r.Settings.Downloader.Concurrency)}, nil
}

func (r *Runtime) visualizer() ([]worker.Spec, error) {
	renderer, err := r.renderer()
	if err != nil {
		return nil, err
	}
	v := visualizer.New(visualizer.Config{Accepted: r.Settings.VisualizeAccepted, Downloaded: r.Settings.VisualizeDownloaded,
		Format: r.Settings.VisualizeFormat, Language: r.Settings.VisualizeLanguage, Environment: r.Settings.QREnvironment,
		Layout: r.Layout}, renderer, r.Store, r.pub)
	return []worker.Spec{v.Spec(r.Settings.NATS.Subjects())}, nil
}

// needs is what Open prepares for a set of workers.
type needs struct {
	buckets           map[names.Bucket]bool
	validator, schema bool
}

// needsOf is what the named workers need (none named: every worker); without KSeF
// (Settings.NoKSeF) no worker gets the limiter's bucket or clients.
func needsOf(s Settings) (needs, error) {
	n := needs{buckets: map[names.Bucket]bool{}}
	list := s.Workers
	if len(list) == 0 {
		list = Workers()
	}
	for _, name := range list {
		w, err := lookupWorker(name)
		if err != nil {
			return n, err
		}
		for _, b := range w.buckets {
			n.buckets[b] = true
		}
		n.buckets[names.Limits] = n.buckets[names.Limits] || (w.ksef && !s.NoKSeF)
		n.validator = n.validator || w.validator
		n.schema = n.schema || w.schema
	}
	return n, nil
}
