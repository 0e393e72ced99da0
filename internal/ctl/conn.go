package ctl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// conn is an open connection to the pipeline's NATS and stream.
type conn struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    natsx.Config
	subj   events.Subjects
	stream jetstream.Stream // read from (Config.ReadStreamName); events are published to the pipeline's
	pub    *natsx.Publisher
}

func (c *conn) close() { c.nc.Close() }

// logCtx gives natsx's connection log a destination with --verbose.
func (o *options) logCtx(ctx context.Context) context.Context {
	if !o.verbose {
		return ctx
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: o.env.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	return log.WithContext(ctx)
}

// natsConfig reads the NATS settings.
func (o *options) natsConfig() (natsx.Config, error) {
	if err := o.loadConfig(); err != nil {
		return natsx.Config{}, err
	}
	cfg, err := natsx.ConfigFromEnv(o.getenv)
	if err != nil {
		return natsx.Config{}, usagef("NATS settings: %w", err)
	}
	if o.getenv(natsx.EnvName) == "" {
		cfg.Name = "ksefctl"
	}
	return cfg, nil
}

// connect connects to NATS within the connect timeout (natsx.Connect itself would wait for a
// server forever) and opens the pipeline's stream.
func (o *options) connect(ctx context.Context) (*conn, error) {
	cfg, err := o.natsConfig()
	if err != nil {
		return nil, err
	}
	ctx = o.logCtx(ctx)
	cctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
	defer cancel()
	type result struct {
		nc  *nats.Conn
		js  jetstream.JetStream
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, js, err := natsx.Connect(cctx, cfg)
		done <- result{nc, js, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-cctx.Done():
		// natsx.Connect returns soon with its last error, unless a dial outlasts the deadline:
		// then close what it brings, if anything.
		select {
		case r = <-done:
		case <-time.After(200 * time.Millisecond):
			go func() {
				if r := <-done; r.nc != nil {
					r.nc.Close()
				}
			}()
			r.err = cctx.Err()
		}
	}
	if r.err == nil && cctx.Err() != nil {
		r.nc.Close()
		r.err = cctx.Err()
	}
	if r.err != nil {
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("cannot connect to NATS at %s within %s: %w (set --nats-url or KSEF_NATS_URL)",
			redactURLs(cfg.URL), o.connectTimeout, unwrapConnect(r.err))}
	}
	c := &conn{nc: r.nc, js: r.js, cfg: cfg, subj: cfg.Subjects()}
	// Read from: the pipeline's stream, or the ERP systems' mirror of it (KSEF_NATS_READ_STREAM).
	name := cfg.ReadStreamName()
	c.stream, err = c.js.Stream(cctx, name)
	if err != nil {
		c.close()
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, usagef("NATS at %s has no stream %s: the pipeline has not run against this server, or its KSEF_SUBJECT_PREFIX differs (%q here)",
				redactURLs(cfg.URL), name, cfg.SubjectPrefix)
		case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
			return nil, usagef("NATS at %s has no JetStream for this account", redactURLs(cfg.URL))
		}
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("opening stream %s: %w", name, err)}
	}
	c.pub = natsx.NewPublisher(c.js, cfg)
	return c, nil
}

// unwrapConnect shortens natsx's message to the reason.
func unwrapConnect(err error) error {
	msg := err.Error()
	if _, last, ok := strings.Cut(msg, "(last error: "); ok {
		return errors.New(strings.TrimSuffix(last, ")"))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out")
	}
	return errors.New(strings.TrimPrefix(msg, "natsx: connect: "))
}

// redactURLs hides user information in comma-separated URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// openStore opens object storage.
func (o *options) openStore() (storage.Store, storage.Config, error) {
	if err := o.loadConfig(); err != nil {
		return nil, storage.Config{}, err
	}
	cfg, err := storage.ConfigFromEnv(o.getenv)
	if err != nil {
		return nil, cfg, usagef("storage settings: %w", err)
	}
	st, err := storage.Open(cfg)
	if err != nil {
		return nil, cfg, usagef("storage: %w", err)
	}
	return st, cfg, nil
}

// storageErr classifies a storage failure: unreachable storage is exit 2.
func storageErr(err error, format string, args ...any) error {
	err = fmt.Errorf(format+": %w", append(args, err)...)
	if storage.IsTransient(err) {
		return &Error{Code: ExitUsage, Err: err}
	}
	return err
}
