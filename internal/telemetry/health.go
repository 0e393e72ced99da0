package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

// Health answers the probes: liveness (/healthz: every worker's consume loop runs and is not
// stalled) and readiness (/readyz: NATS, storage and KSeF can be reached). It is safe for
// concurrent use.
type Health struct {
	stallAfter time.Duration
	now        func() time.Time

	mu      sync.Mutex
	workers []*WorkerProbe
	checks  []*check
}

// DefaultStallAfter is how long a worker may go without starting or settling a message while
// messages wait for it before /healthz calls it stalled.
const DefaultStallAfter = 10 * time.Minute

// checkTimeout bounds one readiness check or consumer lookup.
const checkTimeout = 2 * time.Second

// NewHealth returns a Health; stallAfter <= 0 means DefaultStallAfter.
func NewHealth(stallAfter time.Duration) *Health {
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	return &Health{stallAfter: stallAfter, now: time.Now}
}

// Report is the JSON body of /healthz and /readyz.
type Report struct {
	// Status is "ok" or "unavailable".
	Status string `json:"status"`
	// Down names what failed and why.
	Down map[string]string `json:"down,omitempty"`
	// Up names what passed.
	Up []string `json:"up,omitempty"`
	// Workers describe the consume loops (liveness only).
	Workers map[string]WorkerStatus `json:"workers,omitempty"`
}

// OK reports whether nothing is down.
func (r Report) OK() bool { return r.Status == statusOK }

const (
	statusOK          = "ok"
	statusUnavailable = "unavailable"
)

func newReport() Report { return Report{Status: statusOK} }

func (r *Report) add(name string, err error) {
	if err == nil {
		r.Up = append(r.Up, name)
		return
	}
	if r.Down == nil {
		r.Down = map[string]string{}
	}
	r.Down[name] = err.Error()
	r.Status = statusUnavailable
}

// WorkerStatus describes one worker's consume loop.
type WorkerStatus struct {
	// State is "running" or "stopped".
	State    string `json:"state"`
	InFlight int    `json:"in_flight"`
	// LastProgress is when the loop last started the worker, started a handler or settled a
	// message.
	LastProgress time.Time `json:"last_progress"`
	// OldestInFlight is when the longest-running handler started.
	OldestInFlight *time.Time `json:"oldest_in_flight,omitempty"`
	// Pending is how many messages wait for the consumer, when it was looked up.
	Pending *uint64 `json:"pending,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// WorkerProbe follows one worker's consume loop: the runtime reports when the loop starts and
// stops, a middleware sees handlers start and end, and OnSettled sees messages settled.
//
// A loop is stalled when for stallAfter it neither started nor settled a message while its
// consumer has messages waiting (JetStream's num_pending): the loop no longer pulls (every
// slot is held by a hung handler, or the pull itself hangs). An idle loop with nothing to do is
// alive.
type WorkerProbe struct {
	name    string
	h       *Health
	pending func(ctx context.Context) (uint64, error)

	mu       sync.Mutex
	running  bool
	err      error
	progress time.Time
	nextID   uint64
	inFlight map[uint64]time.Time
}

// Worker registers (or re-registers, after a restart) the probe of worker name. pending, when
// not nil, returns how many messages wait for the worker's consumer.
func (h *Health) Worker(name string, pending func(ctx context.Context) (uint64, error)) *WorkerProbe {
	p := &WorkerProbe{name: name, h: h, pending: pending, inFlight: map[uint64]time.Time{}, progress: h.now()}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.workers = slices.DeleteFunc(h.workers, func(w *WorkerProbe) bool { return w.name == name })
	h.workers = append(h.workers, p)
	return p
}

// Running marks the loop started.
func (p *WorkerProbe) Running() {
	p.mu.Lock()
	p.running, p.err, p.progress = true, nil, p.h.now()
	p.mu.Unlock()
}

// Stopped marks the loop ended, with the error it ended with (nil after a drain).
func (p *WorkerProbe) Stopped(err error) {
	p.mu.Lock()
	p.running, p.err = false, err
	p.mu.Unlock()
}

// Settled records a settled message; call it from worker.Config.OnSettled.
func (p *WorkerProbe) Settled() {
	p.mu.Lock()
	p.progress = p.h.now()
	p.mu.Unlock()
}

// Middleware records handlers starting and ending.
func (p *WorkerProbe) Middleware() worker.Middleware {
	return func(next worker.Handler) worker.Handler {
		return func(ctx context.Context, m *worker.Message) error {
			p.mu.Lock()
			id := p.nextID
			p.nextID++
			now := p.h.now()
			p.inFlight[id], p.progress = now, now
			p.mu.Unlock()
			defer func() {
				p.mu.Lock()
				delete(p.inFlight, id)
				p.mu.Unlock()
			}()
			return next(ctx, m)
		}
	}
}

// errStalled: messages wait but the loop has made no progress for stallAfter.
var errStalled = errors.New("stalled")

// status looks at the loop, asking the consumer for waiting messages only when the loop has
// been quiet for stallAfter.
func (p *WorkerProbe) status(ctx context.Context) (WorkerStatus, error) {
	p.mu.Lock()
	st := WorkerStatus{State: "stopped", InFlight: len(p.inFlight), LastProgress: p.progress}
	running, runErr := p.running, p.err
	for _, t := range p.inFlight {
		if st.OldestInFlight == nil || t.Before(*st.OldestInFlight) {
			st.OldestInFlight = &t
		}
	}
	p.mu.Unlock()
	if !running {
		err := errors.New("consume loop stopped")
		if runErr != nil {
			err = fmt.Errorf("consume loop stopped: %w", runErr)
		}
		st.Error = err.Error()
		return st, err
	}
	st.State = "running"
	quiet := p.h.now().Sub(st.LastProgress)
	if quiet < p.h.stallAfter || p.pending == nil {
		return st, nil
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	n, err := p.pending(cctx)
	cancel()
	if err != nil {
		// NATS being away is readiness's concern; a restart would not bring it back.
		st.Error = "pending messages unknown: " + err.Error()
		return st, nil
	}
	st.Pending = &n
	if n == 0 {
		return st, nil
	}
	err = fmt.Errorf("%w: %d messages waiting, nothing started or settled for %s", errStalled, n, quiet.Round(time.Second))
	st.Error = err.Error()
	return st, err
}

// Live reports whether every registered worker's loop runs and is not stalled. A process
// whose workers have not started yet is alive.
func (h *Health) Live(ctx context.Context) Report {
	h.mu.Lock()
	workers := slices.Clone(h.workers)
	h.mu.Unlock()
	r := newReport()
	for _, w := range workers {
		st, err := w.status(ctx)
		if r.Workers == nil {
			r.Workers = map[string]WorkerStatus{}
		}
		r.Workers[w.name] = st
		r.add("worker:"+w.name, err)
	}
	return r
}

// check is a readiness check whose result is kept for ttl.
type check struct {
	name string
	ttl  time.Duration
	fn   func(ctx context.Context) error

	mu   sync.Mutex
	at   time.Time
	last error
}

func (c *check) run(ctx context.Context, now func() time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now().Sub(c.at) < c.ttl {
		return c.last
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c.last, c.at = c.fn(cctx), now()
	return c.last
}

// AddCheck adds a readiness check; its result is reused for ttl (0: checked on every probe),
// so that frequent probes do not cost the dependency requests. A check with the same name is
// replaced.
func (h *Health) AddCheck(name string, ttl time.Duration, fn func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = slices.DeleteFunc(h.checks, func(c *check) bool { return c.name == name })
	h.checks = append(h.checks, &check{name: name, ttl: ttl, fn: fn})
}

// errStarting: no readiness check is registered yet (the runtime is still connecting).
var errStarting = errors.New("starting: not connected yet")

// Ready runs the readiness checks. Until one is registered the process is not ready.
func (h *Health) Ready(ctx context.Context) Report {
	h.mu.Lock()
	checks := slices.Clone(h.checks)
	h.mu.Unlock()
	r := newReport()
	if len(checks) == 0 {
		r.add("startup", errStarting)
		return r
	}
	type result struct {
		name string
		err  error
	}
	results := make([]result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = result{c.name, c.run(ctx, h.now)} })
	}
	wg.Wait()
	for _, res := range results {
		r.add(res.name, res.err)
	}
	return r
}

// LiveHandler serves Live: 200 when alive, 503 otherwise, with the Report as JSON.
func (h *Health) LiveHandler() http.Handler { return reportHandler(h.Live) }

// ReadyHandler serves Ready: 200 when ready, 503 otherwise, with the Report as JSON.
func (h *Health) ReadyHandler() http.Handler { return reportHandler(h.Ready) }

func reportHandler(f func(context.Context) Report) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := f(req.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !r.OK() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(r)
	})
}

// Readiness checks.

// NATSCheck passes while nc is connected.
func NATSCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection %s", s)
		}
		return nil
	}
}

// healthKey is the object StorageCheck looks up; it need not exist.
const healthKey = ".healthz"

// StorageCheck passes while the store answers for bucket: a Stat of an object that need not
// exist (one HEAD request on S3). A missing bucket fails.
func StorageCheck(s storage.Store, bucket string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := s.Stat(ctx, bucket, healthKey)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, storage.ErrBucketNotFound):
			return fmt.Errorf("bucket %s does not exist", bucket)
		case errors.Is(err, storage.ErrNotFound):
			return nil
		}
		return err
	}
}

// DialCheck passes while a TCP connection to the host of rawURL can be opened. It sends no
// request: KSeF's request budget is per context and its public-key endpoint is itself limited,
// so a probe must not spend either.
func DialCheck(rawURL string) (func(context.Context) error, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("telemetry: KSeF URL %q: want scheme://host[:port]", rawURL)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", addr, err)
		}
		return c.Close()
	}, nil
}
