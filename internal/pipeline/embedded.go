package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// EmbeddedOptions configure a whole pipeline in one process: a real NATS server with JetStream,
// storage in a local directory (unless Settings choose S3), the KSeF emulator on a loopback
// port (unless Settings.KSeF.APIURL points elsewhere and Emulator is nil), and the workers.
type EmbeddedOptions struct {
	// Dir holds NATS's JetStream files, the local object store and the emulator's files.
	Dir string
	// Settings are the pipeline's settings; NATS.URL is filled in, and so are the storage
	// directory and the KSeF URL when they are empty or local.
	Settings Settings
	// Emulator configures the in-process emulator; nil runs none (KSeF is at Settings.KSeF.APIURL).
	// Its Tokens are filled from Settings.KSeF.Tokens when empty.
	Emulator *emulator.Config
	Log      zerolog.Logger
	// KSeFOptions are added to every KSeF client (metrics observers).
	KSeFOptions []ksef.Option
}

// Embedded is a running single-process pipeline.
type Embedded struct {
	NATS        *server.Server
	Emulator    *emulator.Emulator
	EmulatorURL string
	Runtime     *Runtime
	ObjectsDir  string // the local object store's directory ("" with S3)

	httpSrv *http.Server
}

// StartEmbedded starts NATS and the emulator and opens the runtime; Run starts the workers.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.Dir == "" {
		return nil, errors.New("pipeline: EmbeddedOptions.Dir is required")
	}
	e := &Embedded{}
	fail := func(err error) (*Embedded, error) { e.Close(); return nil, err }
	var err error
	if e.NATS, err = natsx.RunEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(o.Dir, "nats"), Port: -1}); err != nil {
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
		if e.Emulator, err = emulator.New(cfg); err != nil {
			return fail(fmt.Errorf("starting the emulator: %w", err))
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		e.EmulatorURL = "http://" + ln.Addr().String()
		e.httpSrv = &http.Server{Handler: e.Emulator.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go e.httpSrv.Serve(ln)
		s.KSeF.APIURL = e.EmulatorURL
	}
	if s.KSeF.APIURL == "" {
		s.KSeF.APIURL = ksefconn.DefaultAPIURL
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fail(err)
	}
	if e.Runtime, err = Open(ctx, s, o.Log, o.KSeFOptions...); err != nil {
		return fail(err)
	}
	return e, nil
}

// Run runs the named workers (all when none are named) until ctx ends.
func (e *Embedded) Run(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = Workers()
	}
	return e.Runtime.Run(ctx, names...)
}

// Close stops everything StartEmbedded started.
func (e *Embedded) Close() {
	if e.Runtime != nil {
		e.Runtime.Close()
	}
	if e.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.httpSrv.Shutdown(ctx)
		cancel()
	}
	if e.Emulator != nil {
		e.Emulator.Close()
	}
	if e.NATS != nil {
		e.NATS.Shutdown()
		e.NATS.WaitForShutdown()
	}
}
