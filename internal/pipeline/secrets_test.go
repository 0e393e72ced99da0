package pipeline

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
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
	e, err := StartEmbedded(ctx, EmbeddedOptions{Dir: t.TempDir(), Settings: s, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if e.Runtime.Clients != nil {
		t.Error("KSeF clients were built")
	}
	rep := e.Runtime.Telemetry.Health.Ready(ctx)
	if _, down := rep.Down["ksef"]; down || slices.Contains(rep.Up, "ksef") {
		t.Errorf("readiness checks KSeF: %+v", rep)
	}
	_, err = e.Runtime.clientFor(ctx, "5261040828")
	if err == nil || worker.DeadLetterKind(err) != events.KindPermanent {
		t.Errorf("clientFor: %v, want a permanent error", err)
	}
	if _, err := os.Stat(e.ObjectsDir); errors.Is(err, fs.ErrNotExist) {
		t.Error("the runtime did not open its storage")
	}
}
