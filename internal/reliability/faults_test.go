package reliability

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// seed makes every random choice of the suite (kill points, the emulator's faults) repeatable.
const seed = 20261125

// row is one line of the results table.
type row struct {
	fault                                         string
	invoices, accepted, rejected, lost, sentTwice int
	injected                                      string
	elapsed                                       time.Duration
}

// scenario is one fault: a batch of invoices goes through the pipeline while inject does harm.
type scenario struct {
	name    string
	n       int
	opts    clusterOptions
	workers []string
	// inject arms the fault before the batch is published and returns a function that says,
	// once the batch has settled, what was injected (for the table).
	inject func(t *testing.T, c *cluster, batch []*invoice) (report func() string)
	// after runs further checks once the batch has settled and returns what they add to the
	// row's note (downloads, renderings).
	after func(t *testing.T, c *cluster, batch []*invoice, evs []natsx.Delivered, o *outcome) string
	// timeout bounds the wait for every outcome.
	timeout time.Duration
	// online: the fault hinges on online sends or on other workers; no batch variant.
	online bool
	// batch: the row runs with batch sessions on and the production request limits, so that
	// batch packages carry most of the invoices (checked).
	batch bool
}

// batchEnv puts a row on the volume path: production limits (30 online sends a minute per
// context; the rest cannot wait for a slot and are queued), batch sessions on, packages of up to
// 250 invoices a few seconds apart.
var batchEnv = map[string]string{
	"KSEF_BATCH":              "true",
	"KSEF_LIMITS":             "production",
	"KSEF_MAX_LIMIT_WAIT":     "1s",
	"KSEF_BATCH_MAX_INVOICES": "250",
	"KSEF_BATCH_LINGER":       "500ms",
	"KSEF_BATCH_INTERVAL":     "2s",
	"KSEF_BATCH_LEASE":        "20s",
}

// onBatch is the row sc on the volume path.
func onBatch(sc scenario) scenario {
	sc.name += " [batch]"
	sc.batch = true
	env := maps.Clone(batchEnv)
	maps.Copy(env, sc.opts.env)
	sc.opts.env = env
	if sc.timeout == 0 {
		sc.timeout = 4 * time.Minute
	}
	return sc
}

// TestFaults runs each fault's batch and checks that nothing is lost and nothing is sent twice.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the reliability suite takes a few minutes")
	}
	var mu sync.Mutex
	var rows []row
	for _, sc := range slices.Concat(scenarios(), batchScenarios(), haScenarios()) {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			r := runScenario(t, sc)
			mu.Lock()
			rows = append(rows, r)
			mu.Unlock()
		})
	}
	table := renderTable(rows)
	t.Log("\n" + table)
	if *update {
		if t.Failed() {
			t.Log("not updating docs/reliability.md: the suite failed")
			return
		}
		writeTable(t, table)
	}
}

func runScenario(t *testing.T, sc scenario) row {
	begin := time.Now()
	c := newCluster(t, sc.opts)
	batch := makeBatch(t, "R", sc.n)
	c.start(sc.workers...)
	report := func() string { return "" }
	if sc.inject != nil {
		report = sc.inject(t, c, batch)
	}
	c.publishAll(batch)
	timeout := sc.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	evs, ok := c.events.await(timeout, settled(batch), c.reviveExited)
	t.Logf("every invoice had an outcome after %v", time.Since(begin).Round(100*time.Millisecond))
	if !ok {
		t.Errorf("not every invoice had an outcome after %v; %s", timeout, summary(evs))
	}
	// Let redeliveries run out before judging: a late duplicate would show now.
	idle := []string{pipeline.Sender, pipeline.Poller}
	if sc.batch {
		idle = append(idle, pipeline.SenderBatch)
	}
	c.consumersIdle(30*time.Second, idle...)
	evs = c.caughtUp()
	o := c.judge(batch, evs)
	var more string
	if sc.after != nil {
		more = sc.after(t, c, batch, evs, &o)
	}
	note := report() // after the further checks, which may see more of the fault
	if more != "" {
		note = strings.TrimPrefix(note+"; "+more, "; ")
	}
	c.ksef.clear()
	if c.s3 != nil {
		c.s3.clear()
	}
	o.check(t, 0)
	if sc.batch {
		batched := map[string]bool{}
		for _, d := range evs {
			if ev, ok := d.Event.(*events.InvoiceSent); ok && ev.Mode == events.ModeBatch {
				batched[ev.InvoiceID] = true
			}
		}
		if len(batched) < len(batch)/2 {
			t.Errorf("only %d of %d invoices went through batch sessions: the row does not test the volume path", len(batched), len(batch))
		}
		note = strings.TrimPrefix(note+fmt.Sprintf("; %d through batch", len(batched)), "; ")
	}
	if t.Failed() {
		logTail(t, c)
	}
	r := row{fault: sc.name, invoices: o.invoices, accepted: o.accepted, rejected: o.rejected, lost: o.lost,
		sentTwice: o.sentTwice, injected: note, elapsed: time.Since(begin)}
	t.Logf("%s: %d invoices, %d accepted, %d rejected, %d lost, %d sent twice (%s) in %v",
		r.fault, r.invoices, r.accepted, r.rejected, r.lost, r.sentTwice, r.injected, r.elapsed.Round(100*time.Millisecond))
	return r
}

// reviveExited restarts workers that ended by themselves, and says so: a worker must not exit on
// a fault it can ride out (the check is part of the suite).
func (c *cluster) reviveExited() {
	for _, name := range c.exited() {
		c.t.Errorf("worker %s exited by itself; restarting it", name)
		c.restart(name)
	}
}

// consumersIdle waits until the named durable consumers have nothing pending or unacknowledged.
func (c *cluster) consumersIdle(timeout time.Duration, names ...string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	stream := natsx.StreamName(c.cfg.SubjectPrefix)
	for {
		var busy []string
		for _, name := range names {
			cons, err := c.js.Consumer(c.t.Context(), stream, name)
			if err != nil {
				busy = append(busy, name+": "+err.Error())
				continue
			}
			info, err := cons.Info(c.t.Context())
			if err != nil {
				busy = append(busy, name+": "+err.Error())
				continue
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy = append(busy, fmt.Sprintf("%s (%d pending, %d unacknowledged)", name, info.NumPending, info.NumAckPending))
			}
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("consumers still busy after %v: %v", timeout, busy)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// caughtUp returns the events once the log has read everything the stream holds now.
func (c *cluster) caughtUp() []natsx.Delivered {
	c.t.Helper()
	// Right after a NATS restart a JetStream API request can time out while the client
	// reconnects: ask again for a while before giving up.
	var info *jetstream.StreamInfo
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; {
		var stream jetstream.Stream
		if stream, err = c.js.Stream(c.t.Context(), natsx.StreamName(c.cfg.SubjectPrefix)); err == nil {
			if info, err = stream.Info(c.t.Context()); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	last := info.State.LastSeq
	evs, ok := c.events.await(20*time.Second, func(evs []natsx.Delivered) bool {
		return len(evs) > 0 && evs[len(evs)-1].Seq >= last
	}, nil)
	if !ok {
		c.t.Fatalf("the event log did not reach stream sequence %d", last)
	}
	return evs
}

// logTail logs the end of each worker's log, for a failed scenario.
func logTail(t *testing.T, c *cluster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, w := range c.workers {
		l := w.log.String()
		lines := strings.Split(strings.TrimSpace(l), "\n")
		var keep []string
		for _, line := range lines {
			if strings.Contains(line, `"level":"debug"`) {
				continue
			}
			keep = append(keep, line)
		}
		if len(keep) > 40 {
			keep = keep[len(keep)-40:]
		}
		t.Logf("%s (started %d times, killed %d times), last lines:\n%s", name, w.starts, w.kills, strings.Join(keep, "\n"))
	}
}

// killPoints draws k distinct numbers in [lo, hi] from the suite's seed.
func killPoints(salt uint64, k, lo, hi int) map[int64]bool {
	rng := rand.New(rand.NewPCG(seed, salt))
	out := map[int64]bool{}
	for len(out) < k {
		out[int64(lo+rng.IntN(hi-lo+1))] = true
	}
	return out
}

// killAndRestart kills the worker now and starts it again after a pause, in the background (a
// hook calls it from inside the killed worker's own request).
func (c *cluster) killAndRestart(name string, pause time.Duration) {
	if c.kill(name) {
		go func() {
			time.Sleep(pause)
			c.restart(name)
		}()
	}
}

// isPath reports whether the request is method on a path matching the pattern's segments
// ("*" matches one segment).
func isPath(r *http.Request, method, pattern string) bool {
	if r.Method != method {
		return false
	}
	got, want := strings.Split(strings.Trim(r.URL.Path, "/"), "/"), strings.Split(strings.Trim(pattern, "/"), "/")
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if want[i] != "*" && want[i] != got[i] {
			return false
		}
	}
	return true
}

func scenarios() []scenario {
	const n = 1000
	sendPoller := []string{pipeline.Sender, pipeline.Poller}
	return []scenario{
		{name: "none (baseline)", n: n, workers: sendPoller},
		{
			name: "SIGKILL sender after a send, before its ack", n: n, workers: sendPoller, online: true,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				points := killPoints(1, 4, n/10, n*8/10)
				var sends atomic.Int64
				c.ksef.setAfter(func(r *http.Request, resp *http.Response) {
					if resp == nil || resp.StatusCode != http.StatusOK || !isPath(r, http.MethodPost, "/v2/invoices/send") {
						return
					}
					// KSeF has taken the invoice; its answer has not reached the sender.
					if points[sends.Add(1)] {
						c.killAndRestart(pipeline.Sender, 200*time.Millisecond)
					}
				})
				return func() string { return fmt.Sprintf("%d SIGKILLs of the sender", c.kills(pipeline.Sender)) }
			},
		},
		{
			name: "SIGKILL poller during status polling", n: n, workers: sendPoller, online: true,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				points := killPoints(2, 4, n/10, n*8/10)
				var polls atomic.Int64
				c.ksef.setAfter(func(r *http.Request, resp *http.Response) {
					if resp == nil || !isPath(r, http.MethodGet, "/v2/invoices/status/*") {
						return
					}
					if points[polls.Add(1)] {
						c.killAndRestart(pipeline.Poller, 200*time.Millisecond)
					}
				})
				return func() string { return fmt.Sprintf("%d SIGKILLs of the poller", c.kills(pipeline.Poller)) }
			},
		},
		{
			name: "SIGKILL sender and poller together at random moments", n: n, workers: sendPoller,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				// Moments (ms after the batch is published) drawn from the seed; whatever each
				// worker is doing then is cut short.
				at := killPoints(6, 4, 300, 4000)
				done := make(chan struct{})
				begin := time.Now()
				go func() {
					defer close(done)
					ms := make([]int, 0, len(at))
					for m := range at {
						ms = append(ms, int(m))
					}
					slices.Sort(ms)
					for _, m := range ms {
						time.Sleep(time.Until(begin.Add(time.Duration(m) * time.Millisecond)))
						c.killAndRestart(pipeline.Sender, 100*time.Millisecond)
						c.killAndRestart(pipeline.Poller, 100*time.Millisecond)
					}
				}()
				return func() string {
					<-done
					return fmt.Sprintf("%d SIGKILLs of the sender, %d of the poller", c.kills(pipeline.Sender), c.kills(pipeline.Poller))
				}
			},
		},
		downloaderScenario(n),
		visualizerScenario(300),
		{
			name: "NATS restarted mid-run", n: n, workers: sendPoller,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				restarts := 0
				done := make(chan struct{})
				go func() {
					defer close(done)
					for _, share := range []float64{0.2, 0.6} {
						if _, ok := c.events.await(time.Minute, outcomesAtLeast(int(share*float64(n))), nil); !ok {
							return
						}
						c.stopNATS()
						time.Sleep(2 * time.Second)
						if err := c.startNATS(); err != nil {
							t.Error(err)
							return
						}
						restarts++
					}
				}()
				return func() string { <-done; return fmt.Sprintf("%d restarts, 2 s down each", restarts) }
			},
		},
		{
			name: "MinIO stopped for 5 s", n: n, workers: sendPoller,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				done := make(chan struct{})
				go func() {
					defer close(done)
					if _, ok := c.events.await(time.Minute, outcomesAtLeast(n/4), nil); !ok {
						return
					}
					restart := sharedMinIO.outage(t)
					time.Sleep(5 * time.Second)
					restart()
				}()
				return func() string { <-done; return "1 outage of 5 s" }
			},
		},
		// A 429 pauses the whole context for its Retry-After (1 s at least), and a context sends one
		// invoice at a time: the rate is what keeps the row short, not what the pipeline can take.
		emulatorScenario("KSeF 429 with Retry-After: 1 on 1.5% of calls", n, emulator.Faults{TooManyRate: 0.015, RetryAfter: time.Second}, nil),
		emulatorScenario("KSeF 5xx (HTML, empty, JSON) on 10% of calls", n, emulator.Faults{ServerErrorRate: 0.1}, nil),
		// A context sends one invoice at a time, so each timed-out send holds its context for the
		// whole client timeout.
		emulatorScenario("KSeF slow: 1% of calls over the 2 s client timeout, 0-5 ms jitter", n,
			emulator.Faults{Jitter: 5 * time.Millisecond, SlowRate: 0.01, SlowDelay: 3 * time.Second},
			map[string]string{"KSEF_REQUEST_TIMEOUT": "2s", "KSEF_SEND_LEASE": "5s"}),
		emulatorScenario("KSeF ambiguous 5xx on 10% of sends and closes", n, emulator.Faults{AmbiguousRate: 0.1}, nil),
		emulatorScenario("KSeF sessions expiring 300 ms after they open (all of them)", n,
			emulator.Faults{EarlyExpiryRate: 1, EarlyExpiry: 300 * time.Millisecond}, nil),
		emulatorScenario("KSeF invoices stuck at 150 for 3 s (5%)", n, emulator.Faults{StuckRate: 0.05, StuckFor: 3 * time.Second}, nil),
		emulatorScenario("KSeF cancelling 5% of invoices (405, 500, 550: send again)", n, emulator.Faults{CancelRate: 0.05}, nil),
		emulatorScenario("all KSeF faults at once", n, emulator.Faults{TooManyRate: 0.01, ServerErrorRate: 0.05,
			AmbiguousRate: 0.05, Jitter: 2 * time.Millisecond, SlowRate: 0.005, SlowDelay: 3 * time.Second,
			EarlyExpiryRate: 0.3, EarlyExpiry: 2 * time.Second, StuckRate: 0.02, StuckFor: 3 * time.Second},
			map[string]string{"KSEF_REQUEST_TIMEOUT": "2s", "KSEF_SEND_LEASE": "5s"}),
	}
}

// batchScenarios are the rows on the volume path: every row of scenarios whose fault does not
// hinge on online sends, again with batch sessions carrying most invoices, and the faults of the
// batch path itself.
func batchScenarios() []scenario {
	const n = 1000
	var out []scenario
	for _, sc := range scenarios() {
		if sc.online {
			continue
		}
		out = append(out, onBatch(sc))
	}
	sendPoller := []string{pipeline.Sender, pipeline.Poller}
	killAt := func(name string, salt uint64, match func(r *http.Request, resp *http.Response) bool, what string) scenario {
		return onBatch(scenario{
			name: name, n: n, workers: sendPoller,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				points := killPoints(salt, 3, 1, 6)
				var seen atomic.Int64
				c.ksef.setAfter(func(r *http.Request, resp *http.Response) {
					if match(r, resp) && points[seen.Add(1)] {
						c.killAndRestart(pipeline.Sender, 200*time.Millisecond)
					}
				})
				return func() string {
					if c.kills(pipeline.Sender) == 0 {
						t.Errorf("the sender was never killed %s: the row tested nothing", what)
					}
					return fmt.Sprintf("%d SIGKILLs of the sender %s", c.kills(pipeline.Sender), what)
				}
			},
		})
	}
	out = append(out,
		killAt("SIGKILL sender between a batch close and its state write", 11, func(r *http.Request, resp *http.Response) bool {
			// KSeF closed the session (its package will be processed); the sender has not
			// recorded it.
			return resp != nil && resp.StatusCode == http.StatusOK && isPath(r, http.MethodGet, "/v2/sessions/*/close") &&
				strings.Contains(strings.Split(strings.Trim(r.URL.Path, "/"), "/")[2], "-SB-") // a batch session's id
		}, "after a batch close"),
		killAt("SIGKILL sender during a part upload", 12, func(r *http.Request, resp *http.Response) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/upload/")
		}, "while a part went up"),
		onBatch(scenario{
			name: "SIGKILL poller while it follows batch sessions", n: n, workers: sendPoller,
			inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
				points := killPoints(13, 3, 2, 30)
				var polls atomic.Int64
				c.ksef.setAfter(func(r *http.Request, resp *http.Response) {
					if resp != nil && (isPath(r, http.MethodGet, "/v2/sessions/*/invoices") || isPath(r, http.MethodGet, "/v2/sessions/*")) &&
						points[polls.Add(1)] {
						c.killAndRestart(pipeline.Poller, 200*time.Millisecond)
					}
				})
				return func() string { return fmt.Sprintf("%d SIGKILLs of the poller", c.kills(pipeline.Poller)) }
			},
		}),
		onBatch(emulatorScenario("KSeF closes answered 5xx after closing (35%), retries failing (50%)", n,
			emulator.Faults{AmbiguousRate: 0.35, ServerErrorRate: 0.5, Ops: []ksef.Operation{ksef.OpSessionClose}}, nil)),
		onBatch(emulatorScenario("KSeF failing packages as a whole (20%, and 5% right after open)", n,
			emulator.Faults{PackageFailRate: 0.2, BatchOpenFailRate: 0.05}, nil)),
		onBatch(emulatorScenario("KSeF batch sessions stuck in processing for 5 s (20%)", n,
			emulator.Faults{BatchStuckRate: 0.2, BatchStuckFor: 5 * time.Second}, nil)),
		onBatch(emulatorScenario("part uploads answered 5xx (10%) or hanging past the client's timeout (5%)", n,
			emulator.Faults{ServerErrorRate: 0.1, UploadHangRate: 0.05, UploadHangFor: 4 * time.Second,
				Ops: []ksef.Operation{ksef.OpBatchPartUpload}},
			map[string]string{"KSEF_REQUEST_TIMEOUT": "2s"})),
		onBatch(scenario{
			name: "two sender replicas racing", n: n, workers: []string{pipeline.Sender, pipeline.Sender + "#2", pipeline.Poller},
		}),
	)
	return out
}

// emulatorScenario is a batch sent to a misbehaving KSeF.
func emulatorScenario(name string, n int, f emulator.Faults, env map[string]string) scenario {
	return scenario{
		name: name, n: n, workers: []string{pipeline.Sender, pipeline.Poller},
		opts: clusterOptions{emulator: emulator.Config{Faults: f}, env: env},
		inject: func(t *testing.T, c *cluster, batch []*invoice) func() string {
			return func() string {
				st := c.em.Stats()
				var parts []string
				for _, k := range slices.Sorted(mapsKeys(st.Faults)) {
					parts = append(parts, fmt.Sprintf("%s×%d", k, st.Faults[k]))
				}
				// Slow calls are not counted by the emulator; the clients' timeouts are in the logs.
				logs := c.logs()
				if n := strings.Count(logs, "Client.Timeout exceeded"); n > 0 {
					parts = append(parts, fmt.Sprintf("client timeouts×%d", n))
				}
				if n := strings.Count(logs, "KSeF ended the session"); n > 0 {
					parts = append(parts, fmt.Sprintf("sends into an expired session×%d", n))
				}
				return strings.Join(parts, ", ")
			}
		},
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// outcomesAtLeast holds once k invoices have an outcome.
func outcomesAtLeast(k int) func([]natsx.Delivered) bool {
	return func(evs []natsx.Delivered) bool {
		n := 0
		for _, d := range evs {
			switch d.Event.(type) {
			case *events.InvoiceAccepted, *events.InvoiceRejected:
				n++
			}
		}
		return n >= k
	}
}

// renderTable renders the results as a Markdown table.
func renderTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| fault | invoices | accepted | rejected | lost | sent twice | injected | time |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|---|--:|\n")
	for _, r := range rows {
		if r.injected == "" {
			r.injected = "nothing"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %.1f s |\n", r.fault, r.invoices, r.accepted, r.rejected,
			r.lost, r.sentTwice, r.injected, r.elapsed.Seconds())
	}
	return b.String()
}

// Markers around the generated table in docs/reliability.md.
const (
	tableBegin = "<!-- results:begin (go test ./internal/reliability -run TestFaults -update) -->"
	tableEnd   = "<!-- results:end -->"
)

func writeTable(t *testing.T, table string) {
	path := filepath.Join(testenv.RepoRoot(t), "docs", "reliability.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q markers", path, tableBegin, tableEnd)
	}
	stamp := fmt.Sprintf("\nMeasured %s on %s (seed %d).\n\n", time.Now().UTC().Format("2006-01-02"), machine(), seed)
	s = s[:i+len(tableBegin)] + stamp + table + "\n" + s[j:]
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", path)
}

var _ = ksef.OpInvoiceSend
