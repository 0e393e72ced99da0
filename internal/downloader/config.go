package downloader

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
)

// Defaults.
const (
	DefaultPollInterval    = time.Second
	DefaultPollMaxInterval = 30 * time.Second
	DefaultPollBudget      = 2 * time.Minute
	DefaultOverlap         = 10 * time.Minute
	DefaultStateTTL        = 2 * time.Hour
	DefaultMaxInvoiceSize  = 16 << 20
	// DefaultMaxPartSize is KSeF's largest result part, 50 MiB (api-changelog: partSize), plus
	// the AES padding of its ciphertext.
	DefaultMaxPartSize    = 50<<20 + 16
	DefaultHeartbeatEvery = 5 * time.Second
	DefaultParallelism    = 4
)

// Config tunes a Downloader. The zero value (after WithDefaults) uses the default buckets and
// the system's temporary directory.
type Config struct {
	// Layout names the stored parts (Buckets.QueryParts) and invoices (Buckets.Invoices).
	Layout storage.Layout
	// TempDir holds each result part, decrypted, while it is unpacked ("" = os.TempDir()).
	TempDir string

	// Status polling: the first delay, doubling up to PollMaxInterval (or KSeF's Retry-After),
	// for at most PollBudget per delivery; then the message is snoozed and the query kept.
	PollInterval    time.Duration
	PollMaxInterval time.Duration
	PollBudget      time.Duration

	// Overlap is how far before the query's start the high-water mark is set: KSeF may still
	// store invoices with a PermanentStorage date a little in the past (its own HWM is not
	// exposed by this API). The next incremental window re-reads this overlap and skips what it
	// already has. Zero means DefaultOverlap, negative none.
	Overlap time.Duration
	// StateTTL is how long an idle query's state (its KSeF query and key) is kept in memory
	// for the next delivery.
	StateTTL time.Duration
	// MaxInvoiceSize bounds one invoice XML in a package (KSeF: 1 MB, 3 MB with attachments).
	MaxInvoiceSize int64
	// MaxPartSize bounds one encrypted result part as received; a longer answer is not read
	// past it (nor past what the query's packageSize leaves) and is retried.
	MaxPartSize int64
	// HeartbeatEvery spaces the progress calls that extend the message's ack deadline.
	HeartbeatEvery time.Duration
	// Parallelism is how many invoices of a part are stored and announced at once.
	Parallelism int
}

// WithDefaults returns c with zero settings set to their defaults.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Layout.Buckets == (storage.Buckets{}) {
		c.Layout.Buckets = storage.DefaultBuckets()
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.PollMaxInterval, DefaultPollMaxInterval)
	def(&c.PollBudget, DefaultPollBudget)
	switch {
	case c.Overlap == 0:
		c.Overlap = DefaultOverlap
	case c.Overlap < 0:
		c.Overlap = 0 // none
	}
	def(&c.StateTTL, DefaultStateTTL)
	def(&c.HeartbeatEvery, DefaultHeartbeatEvery)
	if c.MaxPartSize == 0 {
		c.MaxPartSize = DefaultMaxPartSize
	}
	if c.MaxInvoiceSize == 0 {
		c.MaxInvoiceSize = DefaultMaxInvoiceSize
	}
	if c.Parallelism == 0 {
		c.Parallelism = DefaultParallelism
	}
	return c
}

// Validate reports impossible settings.
func (c Config) Validate() error {
	switch {
	case c.Layout.Buckets.Invoices == "" || c.Layout.Buckets.QueryParts == "":
		return errors.New("downloader: the invoices and query-parts buckets must be named")
	case c.PollInterval <= 0 || c.PollMaxInterval < c.PollInterval || c.PollBudget <= 0:
		return errors.New("downloader: poll interval, max interval and budget must be positive, max >= interval")
	case c.StateTTL <= 0 || c.HeartbeatEvery <= 0:
		return errors.New("downloader: state TTL and heartbeat interval must be positive")
	case c.MaxInvoiceSize <= 0 || c.MaxPartSize <= 0:
		return errors.New("downloader: max invoice and part sizes must be positive")
	case c.Parallelism < 1:
		return errors.New("downloader: parallelism must be at least 1")
	}
	return nil
}

// Environment variable names read by [SettingsFromEnv]. KSeF itself (URL, tokens, limits) is
// configured through ksefconn, storage through storage.ConfigFromEnv.
const (
	EnvTempDir         = "KSEF_DOWNLOADER_TEMP_DIR"
	EnvConcurrency     = "KSEF_DOWNLOADER_CONCURRENCY"
	EnvPollInterval    = "KSEF_DOWNLOADER_POLL_INTERVAL"
	EnvPollMaxInterval = "KSEF_DOWNLOADER_POLL_MAX_INTERVAL"
	EnvPollBudget      = "KSEF_DOWNLOADER_POLL_BUDGET"
	EnvOverlap         = "KSEF_DOWNLOADER_OVERLAP"
	EnvMaxInvoiceSize  = "KSEF_DOWNLOADER_MAX_INVOICE_SIZE"
	EnvMaxPartSize     = "KSEF_DOWNLOADER_MAX_PART_SIZE"
	EnvParallelism     = "KSEF_DOWNLOADER_PARALLELISM"
)

// Settings are the service's settings: Config plus how many queries run at once. (The KV
// bucket of the high-water marks is named by the pipeline's runtime, after its stream.)
type Settings struct {
	Config
	// Concurrency is how many queries one replica runs at once (default 2). Each holds one
	// decrypted part on disk and a few buffers in memory.
	Concurrency int
}

// DefaultConcurrency is how many queries a replica runs at once by default.
const DefaultConcurrency = 2

// SettingsFromEnv reads the downloader's variables (see the Env constants); bucket names come
// from storage.BucketsFromEnv. Durations are Go durations ("90s").
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{Concurrency: DefaultConcurrency}
	s.TempDir = getenv(EnvTempDir)
	var errs []error
	wrap := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("downloader: %s: %w", name, err))
		}
	}
	b, err := storage.BucketsFromEnv(getenv)
	errs = append(errs, err)
	s.Layout = storage.Layout{Buckets: b}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{EnvPollInterval, &s.PollInterval}, {EnvPollMaxInterval, &s.PollMaxInterval},
		{EnvPollBudget, &s.PollBudget}, {EnvOverlap, &s.Overlap},
	} {
		if v := getenv(d.env); v != "" {
			*d.dst, err = time.ParseDuration(v)
			wrap(d.env, err)
		}
	}
	if s.Overlap == 0 && getenv(EnvOverlap) != "" {
		s.Overlap = -1 // set to zero: none, not the default
	}
	if v := getenv(EnvConcurrency); v != "" {
		s.Concurrency, err = strconv.Atoi(v)
		wrap(EnvConcurrency, err)
	}
	if v := getenv(EnvParallelism); v != "" {
		s.Parallelism, err = strconv.Atoi(v)
		wrap(EnvParallelism, err)
	}
	if v := getenv(EnvMaxInvoiceSize); v != "" {
		s.MaxInvoiceSize, err = strconv.ParseInt(v, 10, 64)
		wrap(EnvMaxInvoiceSize, err)
	}
	if v := getenv(EnvMaxPartSize); v != "" {
		s.MaxPartSize, err = strconv.ParseInt(v, 10, 64)
		wrap(EnvMaxPartSize, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	s.Config = s.Config.WithDefaults()
	return s, s.Validate()
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if err := s.Config.Validate(); err != nil {
		return err
	}
	if s.Concurrency < 1 {
		return fmt.Errorf("downloader: concurrency %d < 1", s.Concurrency)
	}
	return nil
}
