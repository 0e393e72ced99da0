package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/downloader"
	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/poller"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/visualizer"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Worker names, also their durable consumers' names.
const (
	Sender     = "sender"
	Poller     = "poller"
	Downloader = "downloader"
	Visualizer = "visualizer"
	// SenderBatch is the sender's batch assembler, run with the sender (not a worker of its own).
	SenderBatch = "sender-batch"
)

// Workers lists every worker.
func Workers() []string { return []string{Sender, Poller, Downloader, Visualizer} }

// Runtime is an open pipeline environment: connections and shared components.
type Runtime struct {
	Settings  Settings
	Log       zerolog.Logger
	NC        *nats.Conn
	JS        jetstream.JetStream
	Publisher *natsx.Publisher
	Store     storage.Store
	Layout    storage.Layout
	Clients   *ksefconn.Clients
	Validator *fa3.Validator
	States    *invoicestate.Store
	Marks     *natsx.CAS
	// Sessions is the ledger of open KSeF sessions, shared by the sender's replicas.
	Sessions *natsx.CAS
	// Telemetry gets the runtime's metrics, health and traces.
	Telemetry *telemetry.Telemetry

	// pub is Publisher carrying the trace context; the workers publish with it.
	pub worker.Publisher

	// KSeFOptions are added to every KSeF client (set before Open, e.g. a metrics observer).
	ksefOptions []ksef.Option
}

// kvName names a KV bucket of the pipeline after its stream, so prefixed tenants stay apart.
func kvName(cfg natsx.Config, what string) string {
	return natsx.StreamName(cfg.SubjectPrefix) + "_" + what
}

// Open connects to NATS and storage and builds the shared components. Close releases them.
// Its metrics and health are in a telemetry.Default (no tracing, no server); see
// OpenWithTelemetry.
func Open(ctx context.Context, s Settings, log zerolog.Logger, ksefOptions ...ksef.Option) (*Runtime, error) {
	return OpenWithTelemetry(ctx, s, log, nil, ksefOptions...)
}

// OpenWithTelemetry is Open reporting to tel (nil: a telemetry.Default): KSeF calls, stored
// bytes, readiness of NATS, storage and KSeF, and, when Run runs them, the workers.
func OpenWithTelemetry(ctx context.Context, s Settings, log zerolog.Logger, tel *telemetry.Telemetry, ksefOptions ...ksef.Option) (*Runtime, error) {
	if tel == nil {
		tel = telemetry.Default()
	}
	r := &Runtime{Settings: s, Log: log, Layout: storage.Layout{Buckets: s.Storage.Buckets}, ksefOptions: ksefOptions, Telemetry: tel}
	ctx = log.WithContext(ctx)
	var err error
	if r.NC, r.JS, err = natsx.Connect(ctx, s.NATS); err != nil {
		return nil, err
	}
	if s.NATS.Provisioned {
		r.JS = natsx.BindOnly(r.JS) // INFO only: Provision made everything
	}
	fail := func(err error) (*Runtime, error) { r.Close(); return nil, err }
	if _, err := natsx.EnsureStreams(ctx, r.JS, s.NATS); err != nil {
		return fail(err)
	}
	r.Publisher = natsx.NewPublisher(r.JS, s.NATS)
	r.pub = tel.Publisher(r.Publisher)
	// Every bucket is replicated like the stream: losing the node holding a bucket of one replica
	// would stop every worker, whatever the stream survives. The buckets whose reads decide
	// (state, sessions, marks) are read from their leader: a follower may not have the last write.
	replicas := natsx.KVReplicas(s.NATS.WithDefaults().Replicas)
	stateKV, err := natsx.EnsureKV(ctx, r.JS, kvName(s.NATS, "STATE"), 90*24*time.Hour, replicas, natsx.KVLeaderReads())
	if err != nil {
		return fail(err)
	}
	r.States = invoicestate.NewStore(natsx.NewCAS(stateKV), nil)
	// Limiter windows reach back an hour; a key idle for two is worthless.
	limitsKV, err := natsx.EnsureKV(ctx, r.JS, kvName(s.NATS, "LIMITS"), 2*time.Hour, replicas)
	if err != nil {
		return fail(err)
	}
	marksKV, err := natsx.EnsureKV(ctx, r.JS, kvName(s.NATS, "MARKS"), 0, replicas, natsx.KVLeaderReads())
	if err != nil {
		return fail(err)
	}
	r.Marks = natsx.NewCAS(marksKV)
	sessionsKV, err := natsx.EnsureKV(ctx, r.JS, kvName(s.NATS, "SESSIONS"), 24*time.Hour, replicas, natsx.KVLeaderReads())
	if err != nil {
		return fail(err)
	}
	r.Sessions = natsx.NewCAS(sessionsKV)
	if !s.NoKSeF {
		if r.Clients, err = ksefconn.NewClients(s.KSeF, natsx.NewCAS(limitsKV), append(slices.Clip(ksefOptions), tel.KSeFOptions()...)...); err != nil {
			return fail(err)
		}
		r.Clients.SetHooks(ksefconn.Hooks{Transport: tel.Tracing.Transport, LimitWait: tel.Metrics.LimitWait})
	}
	if r.Store, err = storage.Open(s.Storage); err != nil {
		return fail(err)
	}
	r.Store = tel.Metrics.Store(r.Store)
	b := s.Storage.Buckets
	if err := storage.WaitBuckets(ctx, r.Store, b.Invoices, b.UPO, b.QueryParts, b.Visualizations); err != nil {
		return fail(fmt.Errorf("creating buckets: %w", err))
	}
	if s.SchemaDir == "" && s.SchemaFetch {
		s.SchemaDir, err = fetchSchemas(ctx, s.SchemaCache)
		if err != nil {
			log.Error().Err(err).Msg("fetching the FA(3) schema set failed")
		}
		r.Settings.SchemaDir = s.SchemaDir
	}
	if r.Validator, err = fa3.NewValidator(s.SchemaDir); err != nil {
		return fail(fmt.Errorf("loading the FA(3) schema from %q: %w", s.SchemaDir, err))
	}
	if !r.Validator.SchemaValidated() {
		log.Warn().Str(EnvSchemaDir, s.SchemaDir).Msg("NO FA(3) SCHEMA: invoices are checked only structurally, " +
			"not against the XSD; KSeF may still reject them with 430. Set " + EnvSchemaDir + " to the Ministry's FA schema directory")
	}
	// NATS's status is free to read; storage and KSeF are asked at most every few seconds.
	tel.Health.AddCheck("nats", 0, telemetry.NATSCheck(r.NC))
	tel.Health.AddCheck("storage", 5*time.Second, telemetry.StorageCheck(r.Store, b.Invoices))
	if !s.NoKSeF {
		ksefCheck, err := telemetry.DialCheck(s.KSeF.APIURL)
		if err != nil {
			return fail(err)
		}
		tel.Health.AddCheck("ksef", 10*time.Second, ksefCheck)
	}
	return r, nil
}

// consumerInfo looks up the named worker's consumer (for liveness and lag metrics).
func (r *Runtime) consumerInfo(name string) telemetry.ConsumerInfo {
	stream := natsx.StreamName(r.Settings.NATS.SubjectPrefix)
	return func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		c, err := r.JS.Consumer(ctx, stream, name)
		if err != nil {
			return nil, err
		}
		return c.CachedInfo(), nil
	}
}

// fetchSchemas fetches the Ministry's FA(3) schema set (each file pinned to its SHA-256) into
// cache, by default under the user's cache directory.
func fetchSchemas(ctx context.Context, cache string) (string, error) {
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(base, "ksef-pipeline", "schemas")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return fa3.FetchSchemaSet(ctx, &http.Client{Timeout: 30 * time.Second}, filepath.Join(cache, "FA"), fa3.PublishedSchemaSet())
}

// Close releases the runtime's connections.
func (r *Runtime) Close() {
	if r.Validator != nil {
		r.Validator.Close()
	}
	if r.NC != nil {
		r.NC.Close()
	}
}

func (r *Runtime) workerConfig(name string, defaultConcurrency int, subjects ...string) worker.Config {
	c := worker.Config{Name: name, Subjects: subjects, NATS: r.Settings.NATS, Concurrency: defaultConcurrency,
		AckWait: r.Settings.AckWait, MaxFailures: r.Settings.MaxFailures, DrainTimeout: r.Settings.DrainTimeout}
	if r.Settings.Concurrency > 0 {
		c.Concurrency = r.Settings.Concurrency
	}
	return c
}

// sendLease bounds how long a send may be in flight: the request timeout, the limiter's wait and
// the longest Retry-After the client waits out itself, with a margin.
func (r *Runtime) sendLease() time.Duration {
	if r.Settings.SendLease > 0 {
		return r.Settings.SendLease
	}
	return r.Settings.KSeF.RequestTimeout + r.Settings.KSeF.MaxLimitWait + ksef.DefaultRetryPolicy().MaxRetryAfter + 10*time.Second
}

// clientFor is Clients.For for the workers: a context without a token is a permanent failure,
// dead-lettered at once (and logged once), not one that retries can fix.
func (r *Runtime) clientFor(ctx context.Context, nip string) (*ksef.Client, error) {
	if r.Clients == nil {
		return nil, worker.Permanent(errors.New("this process has no KSeF clients (Settings.NoKSeF)"))
	}
	c, err := r.Clients.For(ctx, nip)
	if errors.Is(err, ksefconn.ErrUnknownContext) {
		return nil, worker.Permanent(err)
	}
	return c, err
}

// Run runs the named workers until ctx ends, then drains them. It returns the first worker's
// error (the others are stopped then).
func (r *Runtime) Run(ctx context.Context, names ...string) error {
	ctx = r.Log.WithContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		cfg        worker.Config
		handler    worker.Handler
		closeFn    func(context.Context)
		background func(context.Context)
	}
	var jobs []job
	for _, name := range names {
		switch name {
		case Sender:
			batch := r.Settings.Batch
			batch.Open = r.Telemetry.Metrics.OpenSessions(telemetry.ModeBatch)
			s := sender.New(sender.Config{Layout: r.Layout, Pool: sender.PoolConfig{CloseIdle: r.Settings.SessionCloseIdle,
				Open: r.Telemetry.Metrics.OpenSessions(telemetry.ModeOnline), Ledger: sender.NewLedger(r.Sessions, nil)},
				Batch: batch, Log: r.Log.With().Str("worker", Sender).Logger(),
				SendLease: r.sendLease(), BlockOnWarnings: r.Settings.BlockOnWarnings, CheckNIPs: r.Settings.Production(),
				Warned: r.Telemetry.Metrics.InvoiceWarned},
				r.clientFor, r.States, r.Store, r.Validator, r.pub)
			jobs = append(jobs, job{r.consumerConfig(Sender), s.Handle, s.Close, s.RunIdleCloser})
			if !batch.Disabled {
				jobs = append(jobs, job{cfg: r.consumerConfig(SenderBatch), handler: s.HandleBatch, closeFn: s.CloseBatch})
			}
		case Poller:
			p := poller.New(poller.Config{Layout: r.Layout, Deadline: r.Settings.OutcomeDeadline, Requeue: sender.QueueItem},
				r.clientFor, r.Store, r.States, r.pub)
			jobs = append(jobs, job{cfg: r.consumerConfig(Poller), handler: p.Handle})
		case Downloader:
			dcfg := r.Settings.Downloader.Config
			dcfg.Layout = r.Layout
			d, err := downloader.New(dcfg, downloader.Deps{
				Clients: func(ctx context.Context, nip string) (downloader.KSeF, error) { return r.clientFor(ctx, nip) },
				Store:   r.Store, Publisher: r.pub, Marks: r.Marks,
			})
			if err != nil {
				return err
			}
			jobs = append(jobs, job{cfg: r.consumerConfig(Downloader), handler: d.Handler()})
		case Visualizer:
			renderer, err := r.renderer()
			if err != nil {
				return err
			}
			v := visualizer.New(visualizer.Config{Accepted: r.Settings.VisualizeAccepted, Downloaded: r.Settings.VisualizeDownloaded,
				Format: r.Settings.VisualizeFormat, Language: r.Settings.VisualizeLanguage, Environment: r.Settings.QREnvironment,
				Layout: r.Layout}, renderer, r.Store, r.pub)
			jobs = append(jobs, job{cfg: r.consumerConfig(Visualizer), handler: v.Handle})
		default:
			return fmt.Errorf("unknown worker %q (want one of %v)", name, Workers())
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		if j.background != nil {
			wg.Add(1)
			go func() { defer wg.Done(); j.background(ctx) }()
		}
		hooks := r.Telemetry.Worker(j.cfg.Name, r.consumerInfo(j.cfg.Name))
		j.cfg.OnSettled = hooks.OnSettled
		go func() {
			defer wg.Done()
			hooks.Probe.Running()
			err := worker.Run(ctx, r.JS, j.cfg, j.handler, hooks.Middleware...)
			hooks.Probe.Stopped(err)
			if j.closeFn != nil {
				// Close pooled KSeF sessions even though ctx is done, so their UPOs can be fetched.
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				j.closeFn(cctx)
				ccancel()
			}
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("%s: %w", j.cfg.Name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ParseWorkers reads a comma-separated list of workers ("all" for every one).
func ParseWorkers(s string) ([]string, error) {
	if s == "" || s == "all" {
		return Workers(), nil
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(Workers(), name) {
			return nil, fmt.Errorf("unknown worker %q (want one of %v)", name, Workers())
		}
		out = append(out, name)
	}
	return out, nil
}
