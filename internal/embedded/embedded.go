// Package embedded runs a whole pipeline in one process: a real NATS server, the KSeF emulator
// and the workers. It is the main job's (cmd/ksef-pipeline), the demo's and the benchmark's; the
// worker services and ksefctl do not import it, so they link neither nats-server nor the emulator.
package embedded

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Options configure a whole pipeline in one process: a real NATS server with JetStream,
// storage in a local directory (unless Settings choose S3), the KSeF emulator on a loopback
// port (unless Settings.KSeF.APIURL points elsewhere and Emulator is nil), and the workers.
type Options struct {
	// Dir holds NATS's JetStream files, the local object store and the emulator's files.
	Dir string
	// Settings are the pipeline's settings; NATS.URL is filled in, and so are the storage
	// directory and the KSeF URL when they are empty or local.
	Settings pipeline.Settings
	// Emulator configures the in-process emulator; nil runs none (KSeF is at Settings.KSeF.APIURL).
	// Its Tokens are filled from Settings.KSeF.Tokens when empty.
	Emulator *emulator.Config
	Log      zerolog.Logger
	// KSeFOptions are added to every KSeF client (metrics observers).
	KSeFOptions []ksef.Option
}

// Pipeline is a running single-process pipeline.
type Pipeline struct {
	NATS        *server.Server
	Emulator    *emulator.Emulator
	EmulatorURL string
	Runtime     *pipeline.Runtime
	ObjectsDir  string // the local object store's directory ("" with S3)

	emulatorSrv *http.Server
}

// Start starts NATS and the emulator and opens the runtime; Run starts the workers.
func Start(ctx context.Context, o Options) (*Pipeline, error) {
	if o.Dir == "" {
		return nil, errors.New("embedded: Options.Dir is required")
	}
	e := &Pipeline{}
	fail := func(err error) (*Pipeline, error) { e.Close(); return nil, err }
	var err error
	if e.NATS, err = natsserver.Run(natsserver.Options{Dir: filepath.Join(o.Dir, "nats"), Port: -1}); err != nil {
		return fail(err)
	}
	s := o.Settings
	s.NATS.URL = e.NATS.ClientURL()
	if s.Storage.Backend == "" || s.Storage.Backend == "local" {
		s.Storage.Backend = "local"
		if s.Storage.Dir == "" {
			s.Storage.Dir = filepath.Join(o.Dir, "objects")
		}
		e.ObjectsDir = s.Storage.Dir
	}
	if o.Emulator != nil {
		cfg := *o.Emulator
		if len(cfg.Tokens) == 0 {
			cfg.Tokens = map[string]string{}
			for nip, token := range s.KSeF.Tokens {
				cfg.Tokens[token] = nip
			}
		}
		if cfg.SchemaDir == "" {
			cfg.SchemaDir = s.SchemaDir
		}
		if cfg.DataDir == "" {
			cfg.DataDir = filepath.Join(o.Dir, "emulator")
		}
		if err := e.startEmulator(cfg); err != nil {
			return fail(err)
		}
		s.KSeF.APIURL = e.EmulatorURL
	}
	if s.KSeF.APIURL == "" {
		s.KSeF.APIURL = ksefconn.DefaultAPIURL
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fail(err)
	}
	if e.Runtime, err = pipeline.Open(ctx, s, o.Log, o.KSeFOptions...); err != nil {
		return fail(err)
	}
	return e, nil
}

// Run runs the named workers (all when none are named) until ctx ends.
func (e *Pipeline) Run(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = pipeline.Workers()
	}
	return e.Runtime.Run(ctx, names...)
}

// Close stops everything Start started.
func (e *Pipeline) Close() {
	if e.Runtime != nil {
		e.Runtime.Close()
	}
	e.stopEmulator()
	if e.NATS != nil {
		e.NATS.Shutdown()
		e.NATS.WaitForShutdown()
	}
}
