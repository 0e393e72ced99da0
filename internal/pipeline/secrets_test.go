package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// TestWorkerEnvTokens: only the workers that call KSeF see the token settings; the visualizer's
// service never opens the token file, even when one is configured, and says it ignored it.
func TestWorkerEnvTokens(t *testing.T) {
	env := map[string]string{ksefconn.EnvTokensFile: "/nonexistent/tokens", ksefconn.EnvTokens: "5261040828=secret"}
	getenv := func(k string) string { return env[k] }
	var opened []string
	readFile := func(p string) ([]byte, error) { opened = append(opened, p); return nil, fs.ErrNotExist }
	for _, name := range Workers() {
		t.Run(name, func(t *testing.T) {
			opened = nil
			g, hidden := WorkerEnv(name, getenv)
			s, err := SettingsFromEnv(g, readFile)
			if CallsKSeF(name) {
				if err == nil || len(opened) != 1 || len(hidden) != 0 {
					t.Fatalf("a worker calling KSeF: err %v, files opened %v, hidden %v; want the token file read", err, opened, hidden)
				}
				return
			}
			if err != nil || len(opened) != 0 || len(s.KSeF.Tokens) != 0 {
				t.Fatalf("err %v, files opened %v, tokens %v; want none", err, opened, s.KSeF.Tokens)
			}
			if !slices.Equal(hidden, []string{ksefconn.EnvTokens, ksefconn.EnvTokensFile}) {
				t.Errorf("hidden %v", hidden)
			}
		})
	}
	if CallsKSeF(Visualizer) || !CallsKSeF(Sender) || !CallsKSeF(Poller) || !CallsKSeF(Downloader) {
		t.Error("only the visualizer calls no KSeF API")
	}
}

// openLocal opens a runtime of s on a fresh embedded NATS server with storage in a temporary
// directory.
func openLocal(t *testing.T, s Settings) *Runtime {
	t.Helper()
	_, s.NATS.URL = testenv.NATS(t)
	s.Storage.Backend, s.Storage.Dir = "local", filepath.Join(t.TempDir(), "objects")
	rt, err := Open(t.Context(), s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// TestNoKSeFRuntime: a runtime opened for the visualizer builds no KSeF clients, does not make
// its readiness depend on KSeF, and a KSeF-calling handler in it fails permanently.
func TestNoKSeFRuntime(t *testing.T) {
	ctx := context.Background()
	s, err := SettingsFromEnv(func(string) string { return "" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	s.NoKSeF = true
	s.KSeF.APIURL = "http://127.0.0.1:1" // nothing listens: a KSeF check would be down
	rt := openLocal(t, s)
	if rt.Clients != nil {
		t.Error("KSeF clients were built")
	}
	rep := rt.Telemetry.Health.Ready(ctx)
	if _, down := rep.Down["ksef"]; down || slices.Contains(rep.Up, "ksef") {
		t.Errorf("readiness checks KSeF: %+v", rep)
	}
	_, err = rt.clientFor(ctx, "5261040828")
	if err == nil || worker.DeadLetterKind(err) != events.KindPermanent {
		t.Errorf("clientFor: %v, want a permanent error", err)
	}
	if _, err := os.Stat(rt.Settings.Storage.Dir); errors.Is(err, fs.ErrNotExist) {
		t.Error("the runtime did not open its storage")
	}
}

// TestOpenOnlyWhatWorkersNeed: Open makes the KV buckets, KSeF clients and FA(3) validator of
// the selected workers only (a visualizer replica: none of them), and Run refuses a worker it
// was not opened for.
func TestOpenOnlyWhatWorkersNeed(t *testing.T) {
	s, err := SettingsFromEnv(func(string) string { return "" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		workers []string
		kv      []names.Bucket
	}{
		{[]string{Visualizer}, nil},
		{[]string{Sender}, []names.Bucket{names.State, names.Limits, names.Sessions}},
		{[]string{Poller, Downloader}, []names.Bucket{names.State, names.Limits, names.Marks}},
		{nil, names.Buckets()},
	} {
		t.Run(fmt.Sprint(tc.workers), func(t *testing.T) {
			s := s
			s.Workers = tc.workers
			rt := openLocal(t, s)
			var kv []names.Bucket
			for n := range rt.JS.KeyValueStoreNames(t.Context()).Name() {
				kv = append(kv, names.Bucket(strings.TrimPrefix(n, names.Stream("")+"_")))
			}
			slices.Sort(kv)
			want := slices.Sorted(slices.Values(tc.kv))
			if !slices.Equal(kv, want) {
				t.Errorf("KV buckets %v, want %v", kv, want)
			}
			sends := tc.workers == nil || slices.Contains(tc.workers, Sender)
			if (rt.Validator != nil) != sends || (rt.Sessions != nil) != sends {
				t.Errorf("validator %v, sessions %v; want them only with the sender", rt.Validator != nil, rt.Sessions != nil)
			}
			if (rt.Clients != nil) != slices.ContainsFunc(tc.kv, func(b names.Bucket) bool { return b == names.Limits }) {
				t.Errorf("KSeF clients %v with buckets %v", rt.Clients != nil, tc.kv)
			}
		})
	}
	rt := openLocal(t, func() Settings { s := s; s.Workers = []string{Visualizer}; return s }())
	if err := rt.Run(t.Context(), Sender); err == nil {
		t.Error("a visualizer's runtime ran the sender")
	}
}
