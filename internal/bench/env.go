package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// envConfig describes one pipeline under test: the pipeline's own settings as the environment
// variables a service reads (so that separate processes get exactly the same ones), and the
// emulator's configuration.
type envConfig struct {
	// Env are pipeline settings (KSEF_*) on top of the bench's defaults.
	Env map[string]string
	// Tokens maps context NIP -> token.
	Tokens   map[string]string
	Emulator emulator.Config
	// Clock, when set, is the accelerated clock shared by the emulator and the pipeline's
	// limiter and KSeF clients.
	Clock *Clock
	Log   zerolog.Logger
}

// env is a started pipeline (workers not yet running) with a follower of its events.
type env struct {
	dir  string
	cfg  envConfig
	vars map[string]string // the settings, as environment variables
	e    *embedded.Pipeline

	cancel context.CancelFunc
	runErr chan error
}

// baseEnv are the bench's defaults: local storage, no visualization, quiet logs.
func baseEnv(o *Options) map[string]string {
	return map[string]string{
		"KSEF_STORAGE":              "local",
		"KSEF_LIMITS":               "off",
		"KSEF_SCHEMA_DIR":           o.SchemaDir,
		"KSEF_VISUALIZE_ACCEPTED":   "false",
		"KSEF_VISUALIZE_DOWNLOADED": "false",
		"KSEF_LOG_LEVEL":            "warn",
		"KSEF_ACK_WAIT":             "30s",
		"KSEF_SESSION_CLOSE_IDLE":   "30s",
		"KSEF_HTTP_ADDR":            "127.0.0.1:0", // replicas must not fight over the default :9090
	}
}

// startEnv starts NATS, the emulator and the pipeline's runtime in a fresh directory.
func startEnv(ctx context.Context, dir string, cfg envConfig) (*env, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	vars := maps.Clone(cfg.Env)
	vars["KSEF_STORAGE_DIR"] = filepath.Join(dir, "objects")
	var tokens []string
	for nip, tok := range cfg.Tokens {
		tokens = append(tokens, nip+"="+tok)
	}
	vars["KSEF_TOKENS"] = strings.Join(tokens, ",")
	s, err := pipeline.SettingsFromEnv(func(k string) string { return vars[k] }, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("bench: settings: %w", err)
	}
	em := cfg.Emulator
	em.TempDir = filepath.Join(dir, "emulator-tmp")
	var kopts []ksef.Option
	if cfg.Clock != nil {
		em.Now = cfg.Clock.Now
		s.KSeF.Now, s.KSeF.Sleep = cfg.Clock.Now, cfg.Clock.Sleep
		kopts = append(kopts, ksef.WithClock(cfg.Clock.Now, cfg.Clock.Sleep))
	}
	e, err := embedded.Start(ctx, embedded.Options{Dir: dir, Settings: s, Emulator: &em, Log: cfg.Log, KSeFOptions: kopts})
	if err != nil {
		return nil, err
	}
	vars["KSEF_NATS_URL"] = e.NATS.ClientURL()
	vars["KSEF_API_URL"] = e.EmulatorURL
	return &env{dir: dir, cfg: cfg, vars: vars, e: e}, nil
}

// run starts the named workers in this process.
func (v *env) run(ctx context.Context, names ...string) {
	ctx, v.cancel = context.WithCancel(ctx)
	v.runErr = make(chan error, 1)
	go func() { v.runErr <- v.e.Run(ctx, names...) }()
}

// close stops the workers (if any) and everything else.
func (v *env) close() {
	if v.cancel != nil {
		v.cancel()
		<-v.runErr
	}
	v.e.Close()
}

// environ is the settings as a process environment; the Go runtime's GOGC, GOMEMLIMIT and
// GODEBUG of the bench's own environment pass through, to try them on the workers.
func (v *env) environ() []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} {
		if val, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+val)
		}
	}
	for k, val := range v.vars {
		out = append(out, k+"="+val)
	}
	return out
}

// tracker follows the pipeline's events and records when each invoice reached each outcome.
type tracker struct {
	mu          sync.Mutex
	published   map[string]time.Time // invoice id -> publish (submitted) time
	sent        map[string]time.Time
	ksefIDs     map[string]string // invoice id -> KSeF's invoice id (from invoice.sent)
	accepted    map[string]time.Time
	rejected    map[string]string
	visualized  map[string]time.Time
	deadLetters []string
	completed   map[string]*events.QueryCompleted
	changed     chan struct{}
	err         chan error
}

func newTracker() *tracker {
	return &tracker{published: map[string]time.Time{}, sent: map[string]time.Time{}, ksefIDs: map[string]string{}, accepted: map[string]time.Time{},
		rejected: map[string]string{}, visualized: map[string]time.Time{}, completed: map[string]*events.QueryCompleted{},
		changed: make(chan struct{}, 1), err: make(chan error, 1)}
}

// follow reads every new event of the stream until ctx ends.
func (t *tracker) follow(ctx context.Context, v *env) {
	rt := v.e.Runtime
	subj := rt.Settings.NATS.Subjects()
	opts := natsx.FollowOptions{Live: true, Since: time.Now().Add(-time.Second),
		Subjects: []string{subj.InvoiceSent(), subj.InvoiceAccepted(), subj.InvoiceRejected(), subj.InvoiceVisualized(),
			subj.QueryCompleted(), subj.Subject("dlq.>")}}
	go func() {
		t.err <- natsx.Follow(ctx, rt.JS, rt.Settings.NATS, opts, func(d natsx.Delivered) error {
			now := time.Now()
			t.mu.Lock()
			switch ev := d.Event.(type) {
			case *events.InvoiceSent:
				if _, ok := t.sent[ev.InvoiceID]; !ok {
					t.sent[ev.InvoiceID] = now
					t.ksefIDs[ev.InvoiceID] = ev.KsefInvoiceID
				}
			case *events.InvoiceAccepted:
				if _, ok := t.accepted[ev.InvoiceID]; !ok {
					t.accepted[ev.InvoiceID] = now
				}
			case *events.InvoiceRejected:
				t.rejected[ev.InvoiceID] = fmt.Sprintf("%d %s %v", ev.Code, ev.Description, ev.Details)
			case *events.InvoiceVisualized:
				if _, ok := t.visualized[ev.InvoiceID]; !ok {
					t.visualized[ev.InvoiceID] = now
				}
			case *events.QueryCompleted:
				t.completed[ev.QueryID] = ev
			case *events.DeadLettered:
				t.deadLetters = append(t.deadLetters, fmt.Sprintf("%s: %s", ev.OriginalSubject, ev.Reason))
			}
			t.mu.Unlock()
			select {
			case t.changed <- struct{}{}:
			default:
			}
			return nil
		})
	}()
}

// wait blocks until done (called under the lock) holds, ctx ends, the follower fails, or
// alive (when set) reports a dead worker process.
func (t *tracker) wait(ctx context.Context, done func() bool, alive ...func() error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		ok := done()
		t.mu.Unlock()
		if ok {
			return nil
		}
		for _, a := range alive {
			if err := a(); err != nil {
				return err
			}
		}
		select {
		case <-t.changed:
		case <-tick.C:
		case err := <-t.err:
			return fmt.Errorf("bench: following events: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *tracker) markPublished(id string, at time.Time) {
	t.mu.Lock()
	t.published[id] = at
	t.mu.Unlock()
}
