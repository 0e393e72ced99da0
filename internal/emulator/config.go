package emulator

import (
	"context"
	"crypto/rsa"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// EnvironmentProd is the Environment of the production service.
const EnvironmentProd = "prod"

// Production values of the Ministry's service (official/limity, in-practice.md), used as defaults.
const (
	DefaultSessionLifetime       = 12 * time.Hour
	DefaultMaxInvoicesPerSession = 10_000
	DefaultMaxInvoiceSize        = fa3.MaxInvoiceSizeWithAttachments // 3 MB; 1 MB without attachments is checked on the content
	DefaultBatchMaxParts         = 50
	DefaultBatchMaxPartSize      = 100 << 20 // before encryption
	DefaultBatchMaxSize          = 5_000_000_000
	DefaultBatchPartWindow       = 20 * time.Minute // upload time per declared part
	DefaultQueryMaxInvoices      = 10_000
	DefaultQueryMaxPartSize      = 50 << 20
	DefaultQueryResultTTL        = 7 * 24 * time.Hour
	DefaultProcessingDelay       = 300 * time.Millisecond
	DefaultStorageDelay          = time.Second
)

// Config configures an Emulator. The zero value of every field means its default, so a Config
// needs only the tokens: Config{Tokens: map[string]string{"dev-token": "5265877635"}}.
type Config struct {
	// Tokens maps each accepted bearer token to the NIP of its context. Requests without a known
	// token get HTTP 401.
	Tokens map[string]string

	// SchemaDir is the FA(3) schema directory (the one holding schemat_FA(3)_v1-0E.xsd). Empty or
	// missing means structural checks only, with a warning in the log. Ignored when Validator is set.
	SchemaDir string
	// Validator, when set, is used instead of compiling SchemaDir (tests share one).
	Validator *fa3.Validator
	// PrivateKey is the KSeF key pair; nil means generate an RSA-2048 key at start, or load it
	// from (and save it to) DataDir.
	PrivateKey *rsa.PrivateKey

	// DataDir, when set, keeps sessions, invoices and the key pair across restarts (an
	// append-only JSON-lines log). Empty means memory only.
	DataDir string
	// TempDir holds batch parts and query result parts while they live; empty means a fresh
	// directory under os.TempDir, removed by Close.
	TempDir string
	// BaseURL is the externally visible base of the emulator (e.g. http://ksef.local:8089), used in
	// the batch upload URLs. Empty means derive it from each request's Host.
	BaseURL string
	// Environment is passed to the visualizer for the QR verification link: "test", "demo",
	// "prod" or a base URL. Empty means "test". "prod" (EnvironmentProd) also turns on the
	// checks KSeF makes on production only: the NIP check digits of the invoice's parties.
	Environment string

	// ProcessingDelay is how long a sent invoice stays at 100/150 before its outcome shows.
	// Negative means none; zero means DefaultProcessingDelay.
	ProcessingDelay time.Duration
	// StorageDelay is the time from acquisition (the KSeF number) to permanent storage, before
	// which an accepted invoice is invisible to ksefInvoiceGet and queries. Negative means none.
	StorageDelay time.Duration
	// SessionLifetime is how long an interactive session stays open (default 12 h).
	SessionLifetime time.Duration
	// MaxInvoicesPerSession caps the invoices of one session (default 10,000).
	MaxInvoicesPerSession int
	// MaxInvoiceSize is the largest invoice a send may declare, in bytes (default 3 MB, KSeF's
	// limit with attachments); the content is then held to KSeF's 1 MB without attachments.
	MaxInvoiceSize int64
	// RejectAttachments makes invoices with an attachment (Zalacznik) sent in a batch session
	// end with status 415, as for a context that has not registered sending attachments in
	// e-Urząd Skarbowy. Online they always end with 415.
	RejectAttachments bool
	// Workers is the number of goroutines processing invoices (default GOMAXPROCS).
	Workers int

	// Batch limits: parts per package, part size before encryption, package size, and the
	// upload window per declared part (the window of every part is parts x BatchPartWindow).
	BatchMaxParts    int
	BatchMaxPartSize int64
	BatchMaxSize     int64
	BatchPartWindow  time.Duration

	// QueryDelay is how long a query takes before its status is ready (before that the status
	// answers 503 with code 1303 and Retry-After). Zero means ready as soon as its parts are built.
	QueryDelay time.Duration
	// QueryMaxInvoices caps one query's result; past it the result is truncated (default 10,000).
	QueryMaxInvoices int
	// QueryMaxPartSize is the largest sum of invoice sizes in one result part (default 50 MB);
	// small values force several parts. A part always holds at least one invoice.
	QueryMaxPartSize int64
	// QueryResultTTL is how long query results can be downloaded (default 7 days).
	QueryResultTTL time.Duration

	// Limits are the per-context request limits.
	Limits LimitConfig
	// Faults are injected failures, off by default.
	Faults Faults

	// Seed makes every random choice (fault injection, identifiers) reproducible; 0 means a
	// seed from the clock.
	Seed int64
	// Now is the clock (default time.Now); tests use a fake one. Every delay and window is
	// measured with it.
	Now func() time.Time
	// Sleep waits for injected latency (default: a timer honouring ctx). Latency is real time,
	// not clock time.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives the emulator's log; nil means none.
	Logger *zerolog.Logger
}

// LimitConfig configures the request limits, counted per context (the token's NIP) and
// operation in sliding windows of a second, a minute and an hour, as KSeF counts them.
type LimitConfig struct {
	// Disabled turns request limits off.
	Disabled bool
	// Table is the limit of each operation; nil means ksef.ProductionLimits() with closing an
	// interactive session at 10/30/120. Closing a batch session is counted apart, under
	// OpSessionOpenBatch's limit. Operations missing from the table are not limited.
	Table ksef.Limits
	// Multiplier scales the table (the Ministry's test environment allows 10x); 0 means 1.
	Multiplier float64
	// LockoutAfter is the number of 429s within LockoutWindow after which each further 429
	// locks the operation for the context for a growing time: LockoutBase, doubling per 429,
	// at most LockoutMax. Zero means 3; negative disables lock-outs.
	LockoutAfter  int
	LockoutWindow time.Duration // default 10 min
	LockoutBase   time.Duration // default 1 min
	LockoutMax    time.Duration // default 45 min, the longest lock-out reported in practice
}

// Faults configures injected failures (in-practice.md). Rates are probabilities in [0, 1]; a
// request draws at most one of 429, 5xx and "succeeded but answered 5xx". Draws come from one
// generator seeded with Config.Seed.
type Faults struct {
	// Latency is added to every API call, plus a uniform random Jitter.
	Latency time.Duration
	Jitter  time.Duration
	// SlowRate is the share of calls delayed by SlowDelay more.
	SlowRate  float64
	SlowDelay time.Duration
	// TooManyRate is the share of calls answered 429 with Retry-After: RetryAfter (default 1 s),
	// without being processed or counted against the limits.
	TooManyRate float64
	RetryAfter  time.Duration
	// ServerErrorRate is the share of calls answered 5xx without being processed: in turn an
	// HTML 502 page, an HTML 503 page, an empty 503 and a JSON 500 Error.
	ServerErrorRate float64
	// AmbiguousRate is the share of ksefInvoiceSend and ksefSessionClose calls that take effect
	// but are answered 5xx (an HTML 502 page or a JSON 500 Error). A retry of such a batch close
	// fails: a batch session closed twice answers 400 1106.
	AmbiguousRate float64
	// StuckRate is the share of invoices that stay at 150 for StuckFor longer (default 1 h).
	StuckRate float64
	StuckFor  time.Duration
	// EarlyExpiryRate is the share of interactive sessions that expire after EarlyExpiry
	// (default 1 min) instead of SessionLifetime.
	EarlyExpiryRate float64
	EarlyExpiry     time.Duration
	// Ops restricts the call faults (latency, slow, 429, 5xx) to these operations; empty means
	// every API operation. Batch part uploads are included only when listed.
	Ops []ksef.Operation

	// PackageFailRate is the share of closed batch sessions whose package fails as a whole:
	// the session ends with a status drawn from PackageFailCodes (default 405, 420, 430, 435;
	// allowed also 415 and 500) and none of its invoices is processed, listed or counted in
	// Stats.Sends.
	PackageFailRate  float64
	PackageFailCodes []int
	// BatchOpenFailRate is the share of batch sessions that fail right after opening with
	// status 415 (Błąd odszyfrowania dostarczonego klucza). Their parts are still taken and
	// their close answers true, but the package is never processed.
	BatchOpenFailRate float64
	// CancelRate is the share of invoices, interactive and batch, that pass every check before
	// the duplicate check but end with a status drawn from CancelCodes instead of 200 or 440
	// (default 405, 500 and 550, the statuses ksef.StatusCode.Retryable calls "send again"). A
	// cancelled invoice gets no KSeF number, is not the original of a later 440 and is not
	// counted in Stats.Sends, so the same invoice sent again can be accepted.
	CancelRate  float64
	CancelCodes []int
	// BatchStuckRate is the share of closed batch sessions that stay at 150, listing no
	// invoices, for BatchStuckFor (default StuckFor) before they show their processing.
	BatchStuckRate float64
	BatchStuckFor  time.Duration
	// UploadHangRate is the share of batch part uploads that hang for UploadHangFor (default
	// 1 min, nginx's proxy timeout) before answering, alternately without storing the part
	// (then answered with an HTML 504 page) and after storing it (then answered 201). A client
	// that gives up earlier ends the hang.
	UploadHangRate float64
	UploadHangFor  time.Duration
	// Hostile answers one context's calls of one operation with what the API never sends
	// (hostile.go): the suite's bad-input corpus drives a hostile KSeF with it.
	Hostile []Hostile
}

// Statuses the package and invoice faults may end with.
var (
	packageFailCodes = []int{sessionBadParts, sessionKeyDecrypt, sessionTooMany, sessionUnzip, sessionDecrypt, int(ksef.StatusUnknown)}
	cancelCodes      = []ksef.StatusCode{ksef.StatusSessionError, ksef.StatusUnknown, ksef.StatusCancelled}
)

// Check refuses rates outside [0, 1] and codes the faults cannot produce.
func (f *Faults) Check() error {
	for _, r := range []float64{f.SlowRate, f.TooManyRate, f.ServerErrorRate, f.AmbiguousRate, f.StuckRate, f.EarlyExpiryRate,
		f.PackageFailRate, f.BatchOpenFailRate, f.CancelRate, f.BatchStuckRate, f.UploadHangRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("fault rates are shares between 0 and 1, got %v", r)
		}
	}
	for _, c := range f.PackageFailCodes {
		if !slices.Contains(packageFailCodes, c) {
			return fmt.Errorf("package fail code %d: want one of %v", c, packageFailCodes)
		}
	}
	for _, c := range f.CancelCodes {
		if !slices.Contains(cancelCodes, ksef.StatusCode(c)) {
			return fmt.Errorf("cancel code %d: want one of %v", c, cancelCodes)
		}
	}
	for _, h := range f.Hostile {
		if err := h.check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			*d = 0
		}
	}
	def(&c.ProcessingDelay, DefaultProcessingDelay)
	def(&c.StorageDelay, DefaultStorageDelay)
	def(&c.SessionLifetime, DefaultSessionLifetime)
	def(&c.BatchPartWindow, DefaultBatchPartWindow)
	def(&c.QueryResultTTL, DefaultQueryResultTTL)
	if c.QueryDelay < 0 {
		c.QueryDelay = 0
	}
	if c.MaxInvoicesPerSession <= 0 {
		c.MaxInvoicesPerSession = DefaultMaxInvoicesPerSession
	}
	if c.MaxInvoiceSize <= 0 {
		c.MaxInvoiceSize = DefaultMaxInvoiceSize
	}
	if c.BatchMaxParts <= 0 {
		c.BatchMaxParts = DefaultBatchMaxParts
	}
	if c.BatchMaxPartSize <= 0 {
		c.BatchMaxPartSize = DefaultBatchMaxPartSize
	}
	if c.BatchMaxSize <= 0 {
		c.BatchMaxSize = DefaultBatchMaxSize
	}
	if c.QueryMaxInvoices <= 0 {
		c.QueryMaxInvoices = DefaultQueryMaxInvoices
	}
	if c.QueryMaxPartSize <= 0 {
		c.QueryMaxPartSize = DefaultQueryMaxPartSize
	}
	if c.Environment == "" {
		c.Environment = "test"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = ksef.Sleep
	}
	l := &c.Limits
	if l.Table == nil {
		l.Table = ksef.ProductionLimits()
		// Closing an interactive session counts with the interactive limits; closing a batch
		// session has its own counter with the batch limits (see classBatchClose).
		l.Table[ksef.OpSessionClose] = l.Table[ksef.OpSessionOpenOnline]
	}
	if l.Multiplier <= 0 {
		l.Multiplier = 1
	}
	if l.LockoutAfter == 0 {
		l.LockoutAfter = 3
	}
	def(&l.LockoutWindow, 10*time.Minute)
	def(&l.LockoutBase, time.Minute)
	def(&l.LockoutMax, 45*time.Minute)
	f := &c.Faults
	def(&f.RetryAfter, time.Second)
	def(&f.StuckFor, time.Hour)
	def(&f.EarlyExpiry, time.Minute)
	def(&f.BatchStuckFor, f.StuckFor)
	def(&f.UploadHangFor, time.Minute)
	if len(f.PackageFailCodes) == 0 {
		f.PackageFailCodes = []int{sessionBadParts, sessionTooMany, sessionUnzip, sessionDecrypt}
	}
	if len(f.CancelCodes) == 0 {
		for _, c := range cancelCodes {
			f.CancelCodes = append(f.CancelCodes, int(c))
		}
	}
}
