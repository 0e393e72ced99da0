// Package pipeline wires the workers to their surroundings: settings from the environment, NATS,
// storage, KSeF clients with the shared request limiter, the FA(3) validator, and a Run that
// starts any set of workers. The services' mains and the all-in-one command use it alike.
package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/downloader"
	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/sender"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
)

// Environment variables of the pipeline itself (NATS, storage and KSeF have their own).
const (
	EnvSchemaDir           = "KSEF_SCHEMA_DIR"           // FA(3) XSD directory
	EnvSchemaFetch         = "KSEF_SCHEMA_FETCH"         // true: without a directory, fetch the Ministry's set (pinned) into the cache
	EnvSchemaCache         = "KSEF_SCHEMA_CACHE"         // where fetched schemas go ($HOME/.cache/ksef-pipeline/schemas)
	EnvConcurrency         = "KSEF_CONCURRENCY"          // handlers per worker
	EnvLogLevel            = "KSEF_LOG_LEVEL"            // debug, info, warn, error
	EnvVisualizeAccepted   = "KSEF_VISUALIZE_ACCEPTED"   // render every accepted invoice, asked or not (false)
	EnvVisualizeDownloaded = "KSEF_VISUALIZE_DOWNLOADED" // render downloaded invoices (true)
	EnvVisualizeFormat     = "KSEF_VISUALIZE_FORMAT"     // pdf or html
	EnvVisualizeLanguage   = "KSEF_VISUALIZE_LANGUAGE"   // pl, en or pl_en
	EnvQREnvironment       = "KSEF_QR_ENVIRONMENT"       // test, demo, prod or a base URL
	EnvAckWait             = "KSEF_ACK_WAIT"             // consumer AckWait
	EnvMaxFailures         = "KSEF_MAX_FAILURES"         // failures before a dead letter
	EnvSessionCloseIdle    = "KSEF_SESSION_CLOSE_IDLE"   // close an unused KSeF session after (2m)
	EnvBatch               = "KSEF_BATCH"                // false: never use batch sessions
	EnvBatchLinger         = "KSEF_BATCH_LINGER"         // how long a package waits for more invoices (3s)
	EnvBatchMaxInvoices    = "KSEF_BATCH_MAX_INVOICES"   // invoices per package (10000)
	EnvBatchTempDir        = "KSEF_BATCH_TEMP_DIR"       // where packages are built
	EnvBatchLease          = "KSEF_BATCH_LEASE"          // how long an assembler may work on a package (10m)
	EnvBatchInterval       = "KSEF_BATCH_INTERVAL"       // least time between a context's packages unless full (1m)
	EnvSendLease           = "KSEF_SEND_LEASE"           // how long a send's outcome may stay unknown
	EnvOutcomeDeadline     = "KSEF_OUTCOME_DEADLINE"     // how long an invoice may wait for a package or an outcome (24h)
	EnvDrainTimeout        = "KSEF_DRAIN_TIMEOUT"        // how long in-flight handlers may finish after SIGTERM
	EnvBlockOnWarnings     = "KSEF_BLOCK_ON_WARNINGS"    // true: reject invoices with warnings instead of sending them (false)
)

// Settings of a pipeline process.
type Settings struct {
	NATS       natsx.Config
	Storage    storage.Config
	KSeF       ksefconn.Settings
	Downloader downloader.Settings

	SchemaDir string
	// SchemaFetch: without SchemaDir, fetch the published schema set into SchemaCache.
	SchemaFetch bool
	SchemaCache string
	// Concurrency is per worker; 0 uses each worker's default.
	Concurrency int
	AckWait     time.Duration
	MaxFailures int
	// DrainTimeout is how long in-flight handlers may run on after a stop (default AckWait).
	DrainTimeout time.Duration
	// SessionCloseIdle closes an interactive session unused this long, so its UPO comes soon.
	SessionCloseIdle time.Duration
	// Batch configures the sender's batch sessions.
	Batch sender.BatchConfig
	// SendLease: how long a send's outcome may stay unknown (0: derived from the KSeF request
	// timeout and waits); see sender.Config.SendLease.
	SendLease time.Duration
	// OutcomeDeadline is how long an invoice may wait for a batch package (from its submission)
	// or for KSeF's outcome (from its send) before it is failed with a dead letter (0: 24 h).
	OutcomeDeadline time.Duration
	LogLevel        zerolog.Level

	// Workers are the workers this process runs: Open makes only the KV buckets, KSeF clients
	// and FA(3) validator they need (nil: every worker's).
	Workers []string

	// NoKSeF: the process calls no KSeF API, so it builds no clients, reads no tokens and does
	// not check KSeF's reachability (the visualizer's service; see WorkerEnv).
	NoKSeF bool

	VisualizeAccepted, VisualizeDownloaded bool
	VisualizeFormat, VisualizeLanguage     string
	QREnvironment                          string
	// BlockOnWarnings: the sender rejects invoices with warnings (checks KSeF does not make).
	BlockOnWarnings bool
}

// Production reports whether the pipeline works against production KSeF (KSEF_QR_ENVIRONMENT
// "prod"), where KSeF checks NIP check digits: the sender then checks them too.
func (s Settings) Production() bool { return s.QREnvironment == "prod" }

// SettingsFromEnv reads every setting; readFile reads files named by settings (tokens).
func SettingsFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Settings, error) {
	var errs []error
	s := Settings{SchemaDir: getenv(EnvSchemaDir), LogLevel: zerolog.InfoLevel,
		VisualizeDownloaded: true, VisualizeFormat: getenv(EnvVisualizeFormat),
		VisualizeLanguage: getenv(EnvVisualizeLanguage), QREnvironment: getenv(EnvQREnvironment)}
	var err error
	if s.NATS, err = natsx.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	if s.Storage, err = storage.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	if s.KSeF, err = ksefconn.SettingsFromEnv(getenv, readFile); err != nil {
		errs = append(errs, err)
	}
	if s.Downloader, err = downloader.SettingsFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	if v := getenv(EnvConcurrency); v != "" {
		if s.Concurrency, err = strconv.Atoi(v); err != nil || s.Concurrency < 1 {
			errs = append(errs, fmt.Errorf("%s: want a positive integer, got %q", EnvConcurrency, v))
		}
	}
	if v := getenv(EnvMaxFailures); v != "" {
		if s.MaxFailures, err = strconv.Atoi(v); err != nil || s.MaxFailures < 1 {
			errs = append(errs, fmt.Errorf("%s: want a positive integer, got %q", EnvMaxFailures, v))
		}
	}
	if v := getenv(EnvAckWait); v != "" {
		if s.AckWait, err = time.ParseDuration(v); err != nil || s.AckWait <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvAckWait, v))
		}
	}
	if v := getenv(EnvDrainTimeout); v != "" {
		if s.DrainTimeout, err = time.ParseDuration(v); err != nil || s.DrainTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvDrainTimeout, v))
		}
	}
	if v := getenv(EnvSendLease); v != "" {
		if s.SendLease, err = time.ParseDuration(v); err != nil || s.SendLease < 0 {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvSendLease, v))
		}
	}
	if v := getenv(EnvOutcomeDeadline); v != "" {
		if s.OutcomeDeadline, err = time.ParseDuration(v); err != nil || s.OutcomeDeadline <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration, got %q", EnvOutcomeDeadline, v))
		}
		s.Batch.Deadline = s.OutcomeDeadline
	}
	if v := getenv(EnvSessionCloseIdle); v != "" {
		if s.SessionCloseIdle, err = time.ParseDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvSessionCloseIdle, v))
		}
	}
	s.Batch.TempDir = getenv(EnvBatchTempDir)
	// KSeF opens 60 batch sessions an hour per context: a package a minute keeps within them.
	s.Batch.Interval = time.Minute
	if v := getenv(EnvBatchInterval); v != "" {
		if s.Batch.Interval, err = time.ParseDuration(v); err != nil || s.Batch.Interval < 0 {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvBatchInterval, v))
		}
	}
	if v := getenv(EnvBatch); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false, got %q", EnvBatch, v))
		}
		s.Batch.Disabled = !on
	}
	if v := getenv(EnvBatchLinger); v != "" {
		if s.Batch.Linger, err = time.ParseDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvBatchLinger, v))
		}
	}
	if v := getenv(EnvBatchLease); v != "" {
		if s.Batch.Lease, err = time.ParseDuration(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: want a duration, got %q", EnvBatchLease, v))
		}
	}
	if v := getenv(EnvBatchMaxInvoices); v != "" {
		if s.Batch.MaxInvoices, err = strconv.Atoi(v); err != nil || s.Batch.MaxInvoices < 1 || s.Batch.MaxInvoices > 10000 {
			errs = append(errs, fmt.Errorf("%s: want 1..10000, got %q", EnvBatchMaxInvoices, v))
		}
	}
	if v := getenv(EnvLogLevel); v != "" {
		if s.LogLevel, err = zerolog.ParseLevel(strings.ToLower(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvLogLevel, err))
		}
	}
	s.SchemaCache = getenv(EnvSchemaCache)
	for env, dst := range map[string]*bool{EnvVisualizeAccepted: &s.VisualizeAccepted, EnvVisualizeDownloaded: &s.VisualizeDownloaded,
		EnvSchemaFetch: &s.SchemaFetch, EnvBlockOnWarnings: &s.BlockOnWarnings} {
		if v := getenv(env); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: want true or false, got %q", env, v))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	return s, nil
}
