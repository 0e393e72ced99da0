package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
)

func TestConfigFromEnv(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOff, Service: "sender"}, ""},
		{"addr", map[string]string{EnvHTTPAddr: "127.0.0.1:9100"}, Config{HTTPAddr: "127.0.0.1:9100", Tracing: TracingOff, Service: "sender"}, ""},
		{"server off", map[string]string{EnvHTTPAddr: "off"}, Config{Tracing: TracingOff, Service: "sender"}, ""},
		{"otlp endpoint turns tracing on", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOTLP, Service: "sender"}, ""},
		{"traces endpoint too", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"},
			Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOTLP, Service: "sender"}, ""},
		{"explicit otlp", map[string]string{EnvTracing: "OTLP"}, Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOTLP, Service: "sender"}, ""},
		{"explicit off wins over endpoint", map[string]string{EnvTracing: "off", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOff, Service: "sender"}, ""},
		{"sdk disabled", map[string]string{EnvTracing: "otlp", "OTEL_SDK_DISABLED": "true"}, Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOff, Service: "sender"}, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
			Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOff, Service: "sender"}, ""},
		{"stall", map[string]string{EnvStallAfter: "90s"}, Config{HTTPAddr: ":9090", HTTPAddrDefault: true, Tracing: TracingOff, Service: "sender", StallAfter: 90 * time.Second}, ""},
		{"bad addr", map[string]string{EnvHTTPAddr: "9090"}, Config{}, EnvHTTPAddr},
		{"bad tracing", map[string]string{EnvTracing: "jaeger"}, Config{}, EnvTracing},
		{"bad stall", map[string]string{EnvStallAfter: "-1s"}, Config{}, EnvStallAfter},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ConfigFromEnv("sender", func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestHealth(stall time.Duration) (*Health, *clock) {
	c := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	h := NewHealth(stall)
	h.now = c.now
	return h, c
}

func TestLivenessStates(t *testing.T) {
	h, clk := newTestHealth(time.Minute)
	if r := h.Live(context.Background()); !r.OK() {
		t.Fatalf("no workers yet: %+v, want alive", r)
	}
	var pending atomic.Uint64
	var pendingErr atomic.Value
	pendingErr.Store(errBox{})
	lookups := atomic.Int32{}
	probe := h.Worker("sender", func(context.Context) (uint64, error) {
		lookups.Add(1)
		return pending.Load(), pendingErr.Load().(errBox).err
	})
	probe.Running()

	release := make(chan struct{})
	started := make(chan struct{})
	handler := probe.Middleware()(func(ctx context.Context, m *worker.Message) error {
		close(started)
		<-release
		return nil
	})
	go handler(context.Background(), &worker.Message{})
	<-started

	steps := []struct {
		name    string
		advance time.Duration
		pending uint64
		err     error
		alive   bool
		lookup  bool
	}{
		{"busy, recent progress", 30 * time.Second, 5, nil, true, false},
		{"quiet but nothing waits", 2 * time.Minute, 0, nil, true, true},
		{"quiet and messages wait: stalled", 0, 3, nil, false, true},
		{"consumer unknown (NATS away): not a liveness failure", 0, 3, errors.New("no responders"), true, true},
	}
	for _, s := range steps {
		clk.add(s.advance)
		pending.Store(s.pending)
		pendingErr.Store(errBox{s.err})
		before := lookups.Load()
		r := h.Live(context.Background())
		if r.OK() != s.alive {
			t.Errorf("%s: alive = %v, want %v: %+v", s.name, r.OK(), s.alive, r)
		}
		if looked := lookups.Load() > before; looked != s.lookup {
			t.Errorf("%s: consumer looked up = %v, want %v", s.name, looked, s.lookup)
		}
		if st := r.Workers["sender"]; st.InFlight != 1 || st.OldestInFlight == nil {
			t.Errorf("%s: worker status %+v, want one handler in flight", s.name, st)
		}
	}
	pendingErr.Store(errBox{})
	close(release)
	// The handler ends; settling is progress.
	waitFor(t, func() bool { return h.Live(context.Background()).Workers["sender"].InFlight == 0 })
	probe.Settled()
	if r := h.Live(context.Background()); !r.OK() {
		t.Errorf("after a settle: %+v, want alive", r)
	}
	probe.Stopped(errors.New("consumer deleted"))
	r := h.Live(context.Background())
	if r.OK() || !strings.Contains(r.Down["worker:sender"], "consumer deleted") || r.Workers["sender"].State != "stopped" {
		t.Errorf("stopped: %+v, want down naming the error", r)
	}
	// A restarted worker is alive again.
	h.Worker("sender", nil).Running()
	if r := h.Live(context.Background()); !r.OK() {
		t.Errorf("restarted: %+v", r)
	}
}

type errBox struct{ err error }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadinessChecksAreCachedAndNamed(t *testing.T) {
	h, clk := newTestHealth(0)
	if r := h.Ready(context.Background()); r.OK() || r.Down["startup"] == "" {
		t.Fatalf("no checks: %+v, want not ready (starting)", r)
	}
	var calls atomic.Int32
	var down atomic.Bool
	h.AddCheck("ksef", 10*time.Second, func(ctx context.Context) error {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("check without a deadline")
		}
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	h.AddCheck("nats", 0, func(context.Context) error { return nil })

	srv := httptest.NewServer(h.ReadyHandler())
	defer srv.Close()
	get := func() (int, Report) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Report
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	if code, r := get(); code != http.StatusOK || len(r.Up) != 2 {
		t.Fatalf("ready: %d %+v", code, r)
	}
	down.Store(true)
	get()
	if n := calls.Load(); n != 1 {
		t.Fatalf("ksef checked %d times within its ttl, want 1", n)
	}
	clk.add(11 * time.Second)
	code, r := get()
	if code != http.StatusServiceUnavailable || r.Status != "unavailable" || !strings.Contains(r.Down["ksef"], "connection refused") {
		t.Fatalf("ksef down: %d %+v", code, r)
	}
	if _, ok := r.Down["nats"]; ok {
		t.Errorf("nats reported down: %+v", r)
	}
}

func TestStorageCheck(t *testing.T) {
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := local.EnsureBuckets(ctx, "ksef-invoices"); err != nil {
		t.Fatal(err)
	}
	if err := StorageCheck(local, "ksef-invoices")(ctx); err != nil {
		t.Errorf("existing bucket: %v", err)
	}
	if err := StorageCheck(local, "ksef-missing")(ctx); err == nil {
		t.Error("missing bucket passed")
	}
}

func TestDialCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	up, err := DialCheck("http://" + ln.Addr().String() + "/api")
	if err != nil {
		t.Fatal(err)
	}
	if err := up(context.Background()); err != nil {
		t.Errorf("listening: %v", err)
	}
	ln.Close()
	if err := up(context.Background()); err == nil {
		t.Error("closed port passed")
	}
	if _, err := DialCheck("not a url"); err == nil {
		t.Error("a URL without a host was accepted")
	}
}
