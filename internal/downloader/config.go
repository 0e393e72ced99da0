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
	DefaultHeartbeatEvery  = 5 * time.Second
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
	// already has.
	Overlap time.Duration
	// StateTTL is how long an idle query's state (its KSeF query and key) is kept in memory
	// for the next delivery.
	StateTTL time.Duration
	// MaxInvoiceSize bounds one invoice XML in a package (KSeF: 1 MB, 3 MB with attachments).
	MaxInvoiceSize int64
	// HeartbeatEvery spaces the progress calls that extend the message's ack deadline.
	HeartbeatEvery time.Duration
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
	def(&c.Overlap, DefaultOverlap)
	def(&c.StateTTL, DefaultStateTTL)
	def(&c.HeartbeatEvery, DefaultHeartbeatEvery)
	if c.MaxInvoiceSize == 0 {
		c.MaxInvoiceSize = DefaultMaxInvoiceSize
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
	case c.Overlap < 0 || c.StateTTL <= 0 || c.HeartbeatEvery <= 0:
		return errors.New("downloader: negative overlap or non-positive state TTL or heartbeat")
	case c.MaxInvoiceSize <= 0:
		return errors.New("downloader: max invoice size must be positive")
	}
	return nil
}

// Environment variable names read by [SettingsFromEnv].
const (
	EnvAPIURL          = "KSEF_API_URL"
	EnvTokens          = "KSEF_TOKENS"      // nip=token,nip=token
	EnvTokensFile      = "KSEF_TOKENS_FILE" // one nip=token a line
	EnvTempDir         = "KSEF_DOWNLOADER_TEMP_DIR"
	EnvConcurrency     = "KSEF_DOWNLOADER_CONCURRENCY"
	EnvPollInterval    = "KSEF_DOWNLOADER_POLL_INTERVAL"
	EnvPollMaxInterval = "KSEF_DOWNLOADER_POLL_MAX_INTERVAL"
	EnvPollBudget      = "KSEF_DOWNLOADER_POLL_BUDGET"
	EnvOverlap         = "KSEF_DOWNLOADER_OVERLAP"
	EnvMarksBucket     = "KSEF_DOWNLOADER_MARKS_BUCKET"
	EnvMaxLimitWait    = "KSEF_DOWNLOADER_MAX_LIMIT_WAIT"
	EnvLimitHeadroom   = "KSEF_LIMIT_HEADROOM"
	EnvLimitMultiplier = "KSEF_LIMIT_MULTIPLIER"
)

// Settings are the service's settings beyond Config: where KSeF is, the tokens, how many queries
// run at once, and the shared state.
type Settings struct {
	Config
	APIURL string
	Tokens Tokens
	// Concurrency is how many queries one replica runs at once (default 2).
	Concurrency int
	// MarksBucket is the JetStream KV bucket of the incremental high-water marks.
	MarksBucket string
	// MaxLimitWait is the longest a handler blocks waiting for a request limit; past it the
	// message is snoozed (default 30 s).
	MaxLimitWait time.Duration
	// LimitHeadroom is the share of KSeF's limits used (0..1], LimitMultiplier scales the
	// production table (the test environment allows 10x).
	LimitHeadroom   float64
	LimitMultiplier float64
}

// Default service settings.
const (
	DefaultAPIURL       = "http://127.0.0.1:8089"
	DefaultConcurrency  = 2
	DefaultMarksBucket  = "ksef_download_marks"
	DefaultMaxLimitWait = 30 * time.Second
)

// String describes s without tokens.
func (s Settings) String() string {
	type plain Settings
	p := plain(s)
	p.Tokens = nil
	return fmt.Sprintf("%+v tokens=%s", p, s.Tokens)
}

// GoString is String.
func (s Settings) GoString() string { return s.String() }

// SettingsFromEnv reads the downloader's variables (see the Env constants). Bucket names come
// from storage.BucketsFromEnv. Durations are Go durations ("90s").
func SettingsFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Settings, error) {
	s := Settings{
		APIURL:          getenv(EnvAPIURL),
		Concurrency:     DefaultConcurrency,
		MarksBucket:     getenv(EnvMarksBucket),
		MaxLimitWait:    DefaultMaxLimitWait,
		LimitHeadroom:   1,
		LimitMultiplier: 1,
	}
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
		{EnvPollBudget, &s.PollBudget}, {EnvOverlap, &s.Overlap}, {EnvMaxLimitWait, &s.MaxLimitWait},
	} {
		if v := getenv(d.env); v != "" {
			*d.dst, err = time.ParseDuration(v)
			wrap(d.env, err)
		}
	}
	if v := getenv(EnvConcurrency); v != "" {
		s.Concurrency, err = strconv.Atoi(v)
		wrap(EnvConcurrency, err)
	}
	for _, f := range []struct {
		env string
		dst *float64
	}{{EnvLimitHeadroom, &s.LimitHeadroom}, {EnvLimitMultiplier, &s.LimitMultiplier}} {
		if v := getenv(f.env); v != "" {
			*f.dst, err = strconv.ParseFloat(v, 64)
			wrap(f.env, err)
		}
	}
	s.Tokens = Tokens{}
	if v := getenv(EnvTokens); v != "" {
		t, err := ParseTokens(v)
		wrap(EnvTokens, err)
		for k, v := range t {
			s.Tokens[k] = v
		}
	}
	if path := getenv(EnvTokensFile); path != "" {
		raw, err := readFile(path)
		if err != nil {
			wrap(EnvTokensFile, err)
		} else {
			t, err := ParseTokens(string(raw))
			wrap(EnvTokensFile, err)
			for k, v := range t {
				if _, dup := s.Tokens[k]; dup {
					wrap(EnvTokensFile, fmt.Errorf("NIP %s is also in %s", k, EnvTokens))
				}
				s.Tokens[k] = v
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	if s.MarksBucket == "" {
		s.MarksBucket = DefaultMarksBucket
	}
	s.Config = s.Config.WithDefaults()
	return s, s.Validate()
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if err := s.Config.Validate(); err != nil {
		return err
	}
	switch {
	case len(s.Tokens) == 0:
		return fmt.Errorf("downloader: no KSeF tokens (set %s or %s)", EnvTokens, EnvTokensFile)
	case s.Concurrency < 1:
		return fmt.Errorf("downloader: concurrency %d < 1", s.Concurrency)
	case s.MaxLimitWait <= 0:
		return errors.New("downloader: max limit wait must be positive")
	case s.LimitHeadroom <= 0 || s.LimitHeadroom > 1:
		return fmt.Errorf("downloader: limit headroom %v not in (0, 1]", s.LimitHeadroom)
	case s.LimitMultiplier <= 0:
		return fmt.Errorf("downloader: limit multiplier %v must be positive", s.LimitMultiplier)
	}
	return nil
}
