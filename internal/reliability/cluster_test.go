package reliability

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// clusterOptions configure one pipeline of the suite.
type clusterOptions struct {
	// emulator configures the KSeF emulator; limits are always off (the suite measures
	// faults, not the limiter) and delays are short unless set.
	emulator emulator.Config
	// env adds or overrides workers' settings (KSEF_* variables).
	env map[string]string
	// extraTokens adds contexts (nip -> token) to the demo's.
	extraTokens map[string]string
	// s3Proxy routes the workers' storage traffic through a proxy whose hooks the test sets.
	s3Proxy bool
	// natsConfig, when set, is a nats-server configuration file (accounts, users) for the
	// embedded server; the workers then connect as the users in natsUsers.
	natsConfig string
	natsUsers  map[string][2]string // worker -> user, password
	// natsNodes, when above 1, runs NATS as a JetStream cluster of that many nodes, each a
	// process of its own (natsNodes) instead of one embedded server; the stream and every bucket
	// then have that many replicas, and the workers are given every node's URL.
	natsNodes int
}

// cluster is one pipeline: NATS (embedded in the test process, file storage, a fixed port so it
// can be restarted), MinIO (a process of its own), the KSeF emulator over loopback HTTP behind a
// proxy whose hooks can kill workers at chosen moments, and the workers as processes.
type cluster struct {
	t    *testing.T
	o    clusterOptions
	dir  string
	port int

	natsMu sync.Mutex
	nats   *server.Server
	// natsNodes is NATS when clusterOptions.natsNodes > 1 (nats and port are then unused).
	natsNodes *natsNodes

	em      *emulator.Emulator
	ksef    *hookProxy
	s3      *hookProxy // nil unless clusterOptions.s3Proxy
	buckets storage.Buckets
	s3URL   string // what the workers use (the proxy or MinIO)
	tokens  map[string]string

	cfg    natsx.Config
	nc     *nats.Conn
	js     jetstream.JetStream
	pub    *natsx.Publisher
	store  storage.Store
	events *eventLog

	mu      sync.Mutex
	workers map[string]*workerProc
	closed  bool // the workers were stopped for good: no restarts
}

var clusterSeq atomic.Int32

func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	c := &cluster{t: t, o: o, dir: t.TempDir(), workers: map[string]*workerProc{}}
	endpoint := minIO(t)

	var err error
	if o.natsNodes > 1 {
		// Stopped when the test ends; EnsureStreams below waits for the meta leader.
		c.natsNodes = startNATSNodes(t, o.natsNodes)
	} else {
		// NATS on a port of its own that stays the same across restarts.
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		c.port, _ = strconv.Atoi(p)
		if err := c.startNATS(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.stopNATS)
	}

	// The emulator.
	c.tokens = demo.Tokens()
	for nip, tok := range o.extraTokens {
		c.tokens[nip] = tok
	}
	emCfg := o.emulator
	emCfg.Tokens = map[string]string{}
	for nip, tok := range c.tokens {
		emCfg.Tokens[tok] = nip
	}
	emCfg.SchemaDir = testenv.SchemaDir(t)
	emCfg.TempDir = t.TempDir()
	emCfg.Limits.Disabled = true
	if emCfg.ProcessingDelay == 0 {
		emCfg.ProcessingDelay = 50 * time.Millisecond
	}
	if emCfg.StorageDelay == 0 {
		emCfg.StorageDelay = 100 * time.Millisecond
	}
	if emCfg.Seed == 0 {
		emCfg.Seed = 20261125
	}
	c.em, err = emulator.New(emCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.em.Close() })
	emURL := serve(t, c.em.Handler())
	c.ksef = newHookProxy(t, emURL)

	n := clusterSeq.Add(1)
	c.buckets = storage.Buckets{Invoices: fmt.Sprintf("rel%d-invoices", n), UPO: fmt.Sprintf("rel%d-upo", n),
		QueryParts: fmt.Sprintf("rel%d-parts", n), Visualizations: fmt.Sprintf("rel%d-vis", n)}
	c.s3URL = endpoint
	if o.s3Proxy {
		c.s3 = newHookProxy(t, "http://"+endpoint)
		c.s3URL = strings.TrimPrefix(c.s3.url, "http://")
	}

	// The test's own view: a connection, a publisher, the event log and storage.
	c.cfg = natsx.Config{URL: c.natsURL(), Replicas: max(o.natsNodes, 1)}
	if o.natsConfig != "" {
		c.cfg.User, c.cfg.Password = "admin", os.Getenv("KSEF_NATS_ADMIN_PASSWORD")
	}
	ctx := t.Context()
	c.nc, c.js, err = natsx.Connect(ctx, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	if _, err := natsx.EnsureStreams(ctx, c.js, c.cfg); err != nil {
		t.Fatal(err)
	}
	c.pub = natsx.NewPublisher(c.js, c.cfg)
	c.store, err = storage.Open(storage.Config{Backend: "s3", Buckets: c.buckets,
		S3: storage.S3Config{Endpoint: endpoint, AccessKey: testenv.MinIOAccessKey, SecretKey: testenv.MinIOSecretKey}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.EnsureBuckets(ctx, c.buckets.Invoices, c.buckets.UPO, c.buckets.QueryParts, c.buckets.Visualizations); err != nil {
		t.Fatal(err)
	}
	c.events = followEvents(t, c.js, c.cfg)
	// Workers are killed before anything else stops, so that none logs the others' going.
	t.Cleanup(c.stopWorkers)
	return c
}

// natsURL is the URL of the embedded server, or every node's (comma-separated) on a cluster.
func (c *cluster) natsURL() string {
	if c.natsNodes != nil {
		return c.natsNodes.layout.URL()
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", c.port)
}

// startNATS starts the embedded server on the cluster's port and store directory (every node
// not running, on a cluster).
func (c *cluster) startNATS() error {
	c.natsMu.Lock()
	defer c.natsMu.Unlock()
	if c.natsNodes != nil {
		for i := range c.natsNodes.layout.Size() {
			if err := c.natsNodes.start(i); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	for range 20 { // the port may be held for a moment after a shutdown
		if c.o.natsConfig != "" {
			c.nats, err = runConfigured(c.o.natsConfig, filepath.Join(c.dir, "nats"), c.port)
		} else {
			c.nats, err = natsserver.Run(natsserver.Options{Dir: filepath.Join(c.dir, "nats"), Port: c.port})
		}
		if err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("starting NATS on port %d: %w", c.port, err)
}

func (c *cluster) stopNATS() {
	c.natsMu.Lock()
	defer c.natsMu.Unlock()
	if c.natsNodes != nil {
		c.natsNodes.stopAll()
		return
	}
	if c.nats != nil {
		c.nats.Shutdown()
		c.nats.WaitForShutdown()
		c.nats = nil
	}
}

// runConfigured starts an embedded server from a nats-server configuration file, on the given
// port and store directory.
func runConfigured(conf, storeDir string, port int) (*server.Server, error) {
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, err
	}
	opts.Host, opts.Port, opts.StoreDir, opts.JetStream = "127.0.0.1", port, storeDir, true
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("NATS not ready after 10s")
	}
	return s, nil
}

// workerEnv is the environment of a worker process: everything the services read. A name
// "worker#k" is another replica of worker.
func (c *cluster) workerEnv(replica string) []string {
	name, _, _ := strings.Cut(replica, "#")
	var toks []string
	for nip, tok := range c.tokens {
		toks = append(toks, nip+"="+tok)
	}
	sort.Strings(toks)
	env := map[string]string{
		envWorker:                       name,
		"KSEF_NATS_URL":                 c.natsURL(),
		"KSEF_NATS_NAME":                replica,
		"KSEF_NATS_REPLICAS":            strconv.Itoa(c.cfg.Replicas),
		"KSEF_STORAGE":                  "s3",
		"KSEF_S3_ENDPOINT":              c.s3URL,
		"KSEF_S3_ACCESS_KEY":            testenv.MinIOAccessKey,
		"KSEF_S3_SECRET_KEY":            testenv.MinIOSecretKey,
		"KSEF_S3_BUCKET_INVOICES":       c.buckets.Invoices,
		"KSEF_S3_BUCKET_UPO":            c.buckets.UPO,
		"KSEF_S3_BUCKET_QUERY_PARTS":    c.buckets.QueryParts,
		"KSEF_S3_BUCKET_VISUALIZATIONS": c.buckets.Visualizations,
		"KSEF_API_URL":                  c.ksef.url,
		"KSEF_TOKENS":                   strings.Join(toks, ","),
		"KSEF_LIMITS":                   "off",
		"KSEF_REQUEST_TIMEOUT":          "10s",
		"KSEF_SCHEMA_DIR":               testenv.SchemaDir(c.t),
		"KSEF_ACK_WAIT":                 "2s",
		"KSEF_SEND_LEASE":               "3s",
		"KSEF_SESSION_CLOSE_IDLE":       "1s",
		"KSEF_LOG_LEVEL":                "debug",
		"KSEF_HTTP_ADDR":                "off", // several workers of a test share the host
		"KSEF_VISUALIZE_ACCEPTED":       "false",
		"KSEF_VISUALIZE_DOWNLOADED":     "false",
		"KSEF_BATCH":                    "false",
		"KSEF_DOWNLOADER_TEMP_DIR":      c.t.TempDir(),
		"KSEF_BATCH_TEMP_DIR":           c.t.TempDir(),
		"TMPDIR":                        c.t.TempDir(),
	}
	if up, ok := c.o.natsUsers[name]; ok {
		env["KSEF_NATS_USER"], env["KSEF_NATS_PASSWORD"] = up[0], up[1]
	}
	for k, v := range c.o.env {
		env[k] = v
	}
	var out []string
	for _, kv := range os.Environ() {
		// The parent's pipeline settings must not leak into the workers.
		if strings.HasPrefix(kv, "KSEF_") && !strings.HasPrefix(kv, testenv.EnvMinIOBin+"=") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// workerProc is one worker run as a process, restarted after each kill; its log (every run's)
// is kept for the security checks and for failure messages.
type workerProc struct {
	name   string
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	log    testenv.LogBuffer
	starts int
	kills  int
}

// start runs the named workers (each as its own process).
func (c *cluster) start(names ...string) {
	c.t.Helper()
	for _, name := range names {
		c.mu.Lock()
		w := c.workers[name]
		if w == nil {
			w = &workerProc{name: name}
			c.workers[name] = w
		}
		c.mu.Unlock()
		w.mu.Lock()
		err := c.spawnLocked(w)
		w.mu.Unlock()
		if err != nil {
			c.t.Fatalf("starting %s: %v", name, err)
		}
	}
}

func (c *cluster) spawnLocked(w *workerProc) error {
	cmd := exec.Command(os.Args[0])
	cmd.Env = c.workerEnv(w.name)
	cmd.Stdout, cmd.Stderr = &w.log, &w.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	w.cmd, w.done = cmd, done
	w.starts++
	return nil
}

// kill sends SIGKILL to the worker and waits until it is gone; it reports whether it was
// running.
func (c *cluster) kill(name string) bool {
	c.mu.Lock()
	w := c.workers[name]
	c.mu.Unlock()
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.killLocked()
}

func (w *workerProc) killLocked() bool {
	if w.cmd == nil {
		return false
	}
	select {
	case <-w.done:
		w.cmd = nil
		return false
	default:
	}
	w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
	w.cmd = nil
	w.kills++
	return true
}

// restart kills the worker if it runs and starts it again (unless the cluster is shutting down).
func (c *cluster) restart(name string) {
	c.t.Helper()
	c.mu.Lock()
	w, closed := c.workers[name], c.closed
	c.mu.Unlock()
	if closed || w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.killLocked()
	if err := c.spawnLocked(w); err != nil {
		c.t.Errorf("restarting %s: %v", name, err)
	}
}

// exited returns the workers that have ended by themselves (a crash, a fatal error).
func (c *cluster) exited() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, w := range c.workers {
		w.mu.Lock()
		if w.cmd != nil {
			select {
			case <-w.done:
				out = append(out, name)
			default:
			}
		}
		w.mu.Unlock()
	}
	return out
}

// stopWorkers stops every worker: SIGTERM (they drain), SIGKILL after a few seconds.
func (c *cluster) stopWorkers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, w := range c.workers {
		w.mu.Lock()
		if w.cmd != nil {
			w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(5 * time.Second):
				w.cmd.Process.Kill()
				<-w.done
			}
			w.cmd = nil
		}
		w.mu.Unlock()
	}
}

// logs returns everything the workers have logged.
func (c *cluster) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(c.workers))
	for n := range c.workers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString(c.workers[n].log.String())
	}
	return b.String()
}

// kills counts the SIGKILLs of a worker.
func (c *cluster) kills(name string) int {
	c.mu.Lock()
	w := c.workers[name]
	c.mu.Unlock()
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.kills
}

// serve serves h on a loopback port until the test ends and returns its URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// hookProxy is a reverse proxy whose hooks see each request before it is forwarded and each
// answer before it goes back: the suite kills workers there, at the exact step it wants.
type hookProxy struct {
	url string
	// before may answer the request itself (returning true): the request then never reaches
	// the target.
	before atomic.Pointer[func(r *http.Request) bool]
	// after sees the target's answer (nil on a transport error) before the client does.
	after atomic.Pointer[func(r *http.Request, resp *http.Response)]
}

func newHookProxy(t testing.TB, target string) *hookProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &hookProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = p
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	// S3 signatures cover the Host header: keep the client's (NewSingleHostReverseProxy does).
	p.url = serve(t, rp)
	return p
}

var errHooked = fmt.Errorf("reliability: request stopped by a hook")

func (p *hookProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	if f := p.before.Load(); f != nil && (*f)(r) {
		return nil, errHooked
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if f := p.after.Load(); f != nil {
		if err != nil {
			(*f)(r, nil)
		} else {
			(*f)(r, resp)
		}
	}
	return resp, err
}

func (p *hookProxy) setBefore(f func(r *http.Request) bool) { p.before.Store(&f) }
func (p *hookProxy) setAfter(f func(r *http.Request, resp *http.Response)) {
	p.after.Store(&f)
}
func (p *hookProxy) clear() { p.before.Store(nil); p.after.Store(nil) }

// zerologTo is a logger for the test process's own pieces (at warn: they are not under test).
func zerologTo(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

var _ = pipeline.Workers
