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

	"github.com/ksef-pipeline/ksef-pipeline/internal/invoicestate"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Worker names (see names), for the pipeline's callers.
const (
	Sender      = names.Sender
	Poller      = names.Poller
	Downloader  = names.Downloader
	Visualizer  = names.Visualizer
	SenderBatch = names.SenderBatch
)

// Workers lists every worker.
func Workers() []string { return names.Workers() }

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
	need, err := needsOf(s)
	if err != nil {
		return fail(err)
	}
	kv := map[names.Bucket]*natsx.CAS{}
	for _, b := range names.Buckets() {
		if !need.buckets[b] {
			continue
		}
		bucket, err := ensureKV(ctx, r.JS, s.NATS, b)
		if err != nil {
			return fail(err)
		}
		kv[b] = natsx.NewCAS(bucket)
	}
	if cas := kv[names.State]; cas != nil {
		r.States = invoicestate.NewStore(cas, nil)
	}
	r.Marks, r.Sessions = kv[names.Marks], kv[names.Sessions]
	if kv[names.Limits] != nil {
		if r.Clients, err = ksefconn.NewClients(s.KSeF, kv[names.Limits], append(slices.Clip(ksefOptions), tel.KSeFOptions()...)...); err != nil {
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
	if s.SchemaDir == "" && s.SchemaFetch && need.schema {
		s.SchemaDir, err = fetchSchemas(ctx, s.SchemaCache)
		if err != nil {
			log.Error().Err(err).Msg("fetching the FA(3) schema set failed")
		}
		r.Settings.SchemaDir = s.SchemaDir
	}
	if need.validator {
		if r.Validator, err = fa3.NewValidator(s.SchemaDir); err != nil {
			return fail(fmt.Errorf("loading the FA(3) schema from %q: %w", s.SchemaDir, err))
		}
		if !r.Validator.SchemaValidated() {
			log.Warn().Str(EnvSchemaDir, s.SchemaDir).Msg("NO FA(3) SCHEMA: invoices are checked only structurally, " +
				"not against the XSD; KSeF may still reject them with 430. Set " + EnvSchemaDir + " to the Ministry's FA schema directory")
		}
	}
	// NATS's status is free to read; storage and KSeF are asked at most every few seconds.
	tel.Health.AddCheck("nats", 0, telemetry.NATSCheck(r.NC))
	tel.Health.AddCheck("storage", 5*time.Second, telemetry.StorageCheck(r.Store, b.Invoices))
	if r.Clients != nil {
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

// workerConfig is spec run with the settings common to every worker.
func (r *Runtime) workerConfig(spec worker.Spec) worker.Config {
	return spec.Config(worker.Config{NATS: r.Settings.NATS, Concurrency: r.Settings.Concurrency,
		AckWait: r.Settings.AckWait, MaxFailures: r.Settings.MaxFailures, DrainTimeout: r.Settings.DrainTimeout})
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
	var specs []worker.Spec
	for _, name := range names {
		if _, err := lookupWorker(name); err != nil {
			return err
		}
		if len(r.Settings.Workers) > 0 && !slices.Contains(r.Settings.Workers, name) {
			return fmt.Errorf("worker %s: the runtime was opened for %v only", name, r.Settings.Workers)
		}
		ss, err := builders()[name](r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		specs = append(specs, ss...)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, spec := range specs {
		wg.Add(1)
		if spec.Background != nil {
			wg.Add(1)
			go func() { defer wg.Done(); spec.Background(ctx) }()
		}
		cfg := r.workerConfig(spec)
		hooks := r.Telemetry.Worker(cfg.Name, r.consumerInfo(cfg.Name))
		cfg.OnSettled = hooks.OnSettled
		go func() {
			defer wg.Done()
			hooks.Probe.Running()
			err := worker.Run(ctx, r.JS, cfg, spec.Handler, hooks.Middleware...)
			hooks.Probe.Stopped(err)
			if spec.Close != nil {
				// Close pooled KSeF sessions even though ctx is done, so their UPOs can be fetched.
				cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				spec.Close(cctx)
				ccancel()
			}
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("%s: %w", cfg.Name, err)
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
		if _, err := lookupWorker(name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}
