// Package ctltest runs a whole pipeline in the test process for tests that drive programs
// against it as subprocesses (ksefctl, the Node.js example): embedded NATS, the KSeF emulator,
// local storage and all four workers, with the demo's contexts and their tokens.
package ctltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// RepoRoot returns the directory holding go.mod, searched upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// SchemaDir returns the Ministry's FA(3) schema directory in shared/ beside the repository.
func SchemaDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(filepath.Dir(root), "shared", "ksef", "official", "faktury", "schemy", "FA")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("the FA(3) schemas must be in shared/ beside the repository: %w", err)
	}
	return d, nil
}

// Pipeline is a running pipeline.
type Pipeline struct {
	Embedded   *embedded.Pipeline
	NATSURL    string
	ObjectsDir string
	Buckets    storage.Buckets

	cancel context.CancelFunc
	done   chan error
}

// Env returns the environment a program needs to reach the pipeline: KSEF_NATS_URL, KSEF_STORAGE
// and KSEF_STORAGE_DIR.
func (p *Pipeline) Env() []string {
	return []string{"KSEF_NATS_URL=" + p.NATSURL, "KSEF_STORAGE=local", "KSEF_STORAGE_DIR=" + p.ObjectsDir}
}

// Start starts a pipeline keeping its files in dir; log receives its warnings.
func Start(ctx context.Context, dir string, log io.Writer) (*Pipeline, error) {
	schemaDir, err := SchemaDir()
	if err != nil {
		return nil, err
	}
	s := pipeline.Settings{
		Storage: storage.Config{Backend: "local", Dir: filepath.Join(dir, "objects"), Buckets: storage.DefaultBuckets()},
		KSeF: ksefconn.Settings{Tokens: ksefconn.Tokens(demo.Tokens()), Limits: "off", LimitMultiplier: 1, LimitHeadroom: 1,
			MaxLimitWait: 10 * time.Second, RequestTimeout: 30 * time.Second},
		SchemaDir:         schemaDir,
		AckWait:           10 * time.Second,
		MaxFailures:       2,
		SessionCloseIdle:  time.Second, // sessions close soon after the last send, so UPOs come
		SendLease:         3 * time.Second,
		VisualizeAccepted: true,
		VisualizeFormat:   events.FormatPDF,
		VisualizeLanguage: events.LangPL,
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	em := &emulator.Config{ProcessingDelay: 50 * time.Millisecond, StorageDelay: 100 * time.Millisecond,
		Limits: emulator.LimitConfig{Disabled: true}, TempDir: tmp}
	logger := zerolog.New(log).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	e, err := embedded.Start(ctx, embedded.Options{Dir: dir, Settings: s, Emulator: em, Log: logger})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pipeline{Embedded: e, NATSURL: e.NATS.ClientURL(), ObjectsDir: e.ObjectsDir, Buckets: s.Storage.Buckets,
		cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- e.Run(rctx) }()
	return p, nil
}

// Stop stops the workers and everything Start started.
func (p *Pipeline) Stop() error {
	p.cancel()
	err := <-p.done
	p.Embedded.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
