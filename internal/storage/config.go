package storage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultPartSize is the S3 part size: the memory an upload of unknown
// size holds is about twice this, and such an upload can be up to 10,000
// parts (80 GiB at 8 MiB).
const DefaultPartSize = 8 << 20

// minPartSize is S3's smallest part (except the last).
const minPartSize = 5 << 20

// S3Config says how to reach an S3-compatible server.
type S3Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	Region    string // optional
	UseTLS    bool
	CAFile    string // PEM CA verifying the server (with UseTLS)
	PartSize  uint64 // bytes; 0 means DefaultPartSize, at least 5 MiB
	// MaxRetries bounds the client's own retries of one request; 0 means
	// minio-go's default (10).
	MaxRetries int
}

// WithDefaults fills in the part size.
func (c S3Config) WithDefaults() S3Config {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	return c
}

// Validate reports missing or impossible settings.
func (c S3Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("storage: S3 endpoint missing")
	case strings.Contains(c.Endpoint, "://"):
		return errors.New("storage: S3 endpoint is host:port without a scheme (use KSEF_S3_TLS)")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("storage: S3 access key and secret key are required")
	case c.PartSize != 0 && c.PartSize < minPartSize:
		return fmt.Errorf("storage: S3 part size %d below 5 MiB", c.PartSize)
	case c.CAFile != "" && !c.UseTLS:
		return errors.New("storage: S3 CA file set without TLS")
	}
	return nil
}

// String describes c without the secret key.
func (c S3Config) String() string {
	if c.SecretKey != "" {
		c.SecretKey = "REDACTED"
	}
	type plain S3Config
	return fmt.Sprintf("%+v", plain(c))
}

// GoString is String.
func (c S3Config) GoString() string { return c.String() }

// Environment variable names.
const (
	EnvBackend     = "KSEF_STORAGE"     // "s3" or "local"; default s3 when KSEF_S3_ENDPOINT is set
	EnvDir         = "KSEF_STORAGE_DIR" // directory of the local store
	EnvS3Endpoint  = "KSEF_S3_ENDPOINT"
	EnvS3AccessKey = "KSEF_S3_ACCESS_KEY"
	EnvS3SecretKey = "KSEF_S3_SECRET_KEY"
	EnvS3Region    = "KSEF_S3_REGION"
	EnvS3TLS       = "KSEF_S3_TLS"
	EnvS3CAFile    = "KSEF_S3_CA_FILE"
	EnvS3PartSize  = "KSEF_S3_PART_SIZE"

	EnvBucketInvoices       = "KSEF_S3_BUCKET_INVOICES"
	EnvBucketUPO            = "KSEF_S3_BUCKET_UPO"
	EnvBucketQueryParts     = "KSEF_S3_BUCKET_QUERY_PARTS"
	EnvBucketVisualizations = "KSEF_S3_BUCKET_VISUALIZATIONS"
)

// S3ConfigFromEnv reads the KSEF_S3_* connection settings. KSEF_S3_TLS is
// a strconv.ParseBool form; KSEF_S3_PART_SIZE is bytes, optionally with a
// KiB or MiB suffix.
func S3ConfigFromEnv(getenv func(string) string) (S3Config, error) {
	c := S3Config{
		Endpoint:  getenv(EnvS3Endpoint),
		AccessKey: getenv(EnvS3AccessKey),
		SecretKey: getenv(EnvS3SecretKey),
		Region:    getenv(EnvS3Region),
		CAFile:    getenv(EnvS3CAFile),
	}
	if v := getenv(EnvS3TLS); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return S3Config{}, fmt.Errorf("storage: %s: %w", EnvS3TLS, err)
		}
		c.UseTLS = b
	}
	if v := getenv(EnvS3PartSize); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return S3Config{}, fmt.Errorf("storage: %s: %w", EnvS3PartSize, err)
		}
		c.PartSize = n
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

func parseSize(s string) (uint64, error) {
	mult := uint64(1)
	for suffix, m := range map[string]uint64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if t, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = t, m
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// Buckets names the pipeline's buckets.
type Buckets struct {
	Invoices       string // invoice XML, sent and downloaded
	UPO            string // UPO (official receipts) per session
	QueryParts     string // query result packages (ZIP)
	Visualizations string // PDF and HTML renderings
}

// DefaultBuckets returns ksef-invoices, ksef-upo, ksef-query-parts and
// ksef-visualizations.
func DefaultBuckets() Buckets {
	return Buckets{
		Invoices:       "ksef-invoices",
		UPO:            "ksef-upo",
		QueryParts:     "ksef-query-parts",
		Visualizations: "ksef-visualizations",
	}
}

// BucketsFromEnv returns the default buckets overridden by the
// KSEF_S3_BUCKET_* variables.
func BucketsFromEnv(getenv func(string) string) (Buckets, error) {
	b := DefaultBuckets()
	for _, o := range []struct {
		env string
		dst *string
	}{
		{EnvBucketInvoices, &b.Invoices}, {EnvBucketUPO, &b.UPO},
		{EnvBucketQueryParts, &b.QueryParts}, {EnvBucketVisualizations, &b.Visualizations},
	} {
		if v := getenv(o.env); v != "" {
			if err := checkBucket(v); err != nil {
				return Buckets{}, fmt.Errorf("storage: %s: %w", o.env, err)
			}
			*o.dst = v
		}
	}
	return b, nil
}

// All lists the buckets, for EnsureBuckets.
func (b Buckets) All() []string {
	return []string{b.Invoices, b.UPO, b.QueryParts, b.Visualizations}
}

// Config chooses and configures a Store.
type Config struct {
	Backend string // "s3" or "local"
	Dir     string // local store directory
	S3      S3Config
	Buckets Buckets
}

// ConfigFromEnv reads KSEF_STORAGE, KSEF_STORAGE_DIR, the KSEF_S3_*
// connection settings (when the backend is s3) and the bucket names.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Backend: getenv(EnvBackend), Dir: getenv(EnvDir)}
	if c.Backend == "" {
		c.Backend = "local"
		if getenv(EnvS3Endpoint) != "" {
			c.Backend = "s3"
		}
	}
	var err error
	switch c.Backend {
	case "s3":
		if c.S3, err = S3ConfigFromEnv(getenv); err != nil {
			return Config{}, err
		}
	case "local":
		// The directory is checked by Open: a single-process run picks its own.
	default:
		return Config{}, fmt.Errorf("storage: %s=%q: want s3 or local", EnvBackend, c.Backend)
	}
	if c.Buckets, err = BucketsFromEnv(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Open returns the Store c describes.
func Open(c Config) (Store, error) {
	switch c.Backend {
	case "s3":
		return NewS3(c.S3)
	case "local":
		if c.Dir == "" {
			return nil, fmt.Errorf("storage: %s is required with the local backend", EnvDir)
		}
		return NewLocal(c.Dir)
	}
	return nil, fmt.Errorf("storage: backend %q: want s3 or local", c.Backend)
}
