package natsx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Defaults.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultStreamMaxAge    = 30 * 24 * time.Hour
	DefaultDuplicateWindow = 10 * time.Minute
)

// Config says how to reach NATS and how the pipeline's stream looks. The
// zero value (after [Config.WithDefaults]) connects to a local server
// without authentication.
type Config struct {
	URL string // comma-separated server URLs

	// Authentication: at most one of CredsFile, NKeyFile, User (with
	// Password) or Token.
	CredsFile string // JWT + nkey seed (.creds file)
	NKeyFile  string // nkey seed file
	User      string
	Password  string
	Token     string

	// TLS: TLSCA verifies the server; TLSCert and TLSKey (both or neither)
	// are the client certificate. TLSInsecure skips server verification
	// (tests only).
	TLSCA, TLSCert, TLSKey string
	TLSInsecure            bool

	Name string // connection name shown by the server

	// InboxPrefix replaces "_INBOX" for the replies this connection gets (JetStream API answers,
	// pulled messages), so that each user may be allowed only its own inboxes ("_INBOX_sender":
	// deploy/nats/permissions.conf). Empty: "_INBOX_<User>" with a User, else "_INBOX".
	InboxPrefix string

	// ReadStream is the stream Follow (ksefctl's status, events, watch) reads: empty is the
	// pipeline's stream. The ERP systems' user may create consumers only on the ERP mirror
	// (ERPStreamName), so an ERP reader sets that.
	ReadStream string

	// Provisioned: the stream, KV buckets and durable consumers exist already (ksefctl nats
	// provision), so the pipeline only looks them up, needing INFO and no CREATE or UPDATE
	// permission on them (see BindOnly).
	Provisioned bool

	// SubjectPrefix is put before every subject ("acme" ->
	// "acme.invoice.submitted") and names the stream (KSEF_ACME).
	SubjectPrefix string
	// StreamMaxAge is how long events stay in the stream.
	StreamMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Ids: a
	// retried publish later than this is stored again. Ten minutes covers a
	// worker crash, the consumer's AckWait and a few retries of the
	// redelivered message; the cost is one remembered id per message in
	// the window.
	DuplicateWindow time.Duration
	Replicas        int // replicas of the stream and every KV bucket (1 on a single server)

	// MaxInlineSize limits inline invoice payloads (events.Codec); 0 means
	// events.DefaultMaxInlineSize.
	MaxInlineSize int
}

// Environment variable names read by [ConfigFromEnv].
const (
	EnvURL             = "KSEF_NATS_URL"
	EnvCreds           = "KSEF_NATS_CREDS"
	EnvNKey            = "KSEF_NATS_NKEY"
	EnvUser            = "KSEF_NATS_USER"
	EnvPassword        = "KSEF_NATS_PASSWORD"
	EnvToken           = "KSEF_NATS_TOKEN"
	EnvTLSCA           = "KSEF_NATS_TLS_CA"
	EnvTLSCert         = "KSEF_NATS_TLS_CERT"
	EnvTLSKey          = "KSEF_NATS_TLS_KEY"
	EnvTLSInsecure     = "KSEF_NATS_TLS_INSECURE"
	EnvName            = "KSEF_NATS_NAME"
	EnvInboxPrefix     = "KSEF_NATS_INBOX_PREFIX"
	EnvReadStream      = "KSEF_NATS_READ_STREAM"
	EnvProvisioned     = "KSEF_NATS_PROVISIONED"
	EnvSubjectPrefix   = "KSEF_SUBJECT_PREFIX"
	EnvStreamMaxAge    = "KSEF_NATS_STREAM_MAX_AGE"
	EnvDuplicateWindow = "KSEF_NATS_DUPLICATE_WINDOW"
	EnvReplicas        = "KSEF_NATS_REPLICAS"
	EnvMaxInlineSize   = "KSEF_MAX_INLINE_SIZE"
)

// ConfigFromEnv reads the KSEF_NATS_* variables (see the Env constants),
// applies defaults and validates the result. Durations are Go durations
// ("720h") or whole days ("30d"); booleans are strconv.ParseBool forms.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		URL:           getenv(EnvURL),
		CredsFile:     getenv(EnvCreds),
		NKeyFile:      getenv(EnvNKey),
		User:          getenv(EnvUser),
		Password:      getenv(EnvPassword),
		Token:         getenv(EnvToken),
		TLSCA:         getenv(EnvTLSCA),
		TLSCert:       getenv(EnvTLSCert),
		TLSKey:        getenv(EnvTLSKey),
		Name:          getenv(EnvName),
		InboxPrefix:   getenv(EnvInboxPrefix),
		ReadStream:    getenv(EnvReadStream),
		SubjectPrefix: getenv(EnvSubjectPrefix),
	}
	var errs []error
	if v := getenv(EnvTLSInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		errs = append(errs, wrapEnv(EnvTLSInsecure, err))
		c.TLSInsecure = b
	}
	if v := getenv(EnvProvisioned); v != "" {
		b, err := strconv.ParseBool(v)
		errs = append(errs, wrapEnv(EnvProvisioned, err))
		c.Provisioned = b
	}
	var err error
	c.StreamMaxAge, err = parseDuration(getenv(EnvStreamMaxAge))
	errs = append(errs, wrapEnv(EnvStreamMaxAge, err))
	c.DuplicateWindow, err = parseDuration(getenv(EnvDuplicateWindow))
	errs = append(errs, wrapEnv(EnvDuplicateWindow, err))
	if v := getenv(EnvReplicas); v != "" {
		c.Replicas, err = strconv.Atoi(v)
		errs = append(errs, wrapEnv(EnvReplicas, err))
	}
	if v := getenv(EnvMaxInlineSize); v != "" {
		c.MaxInlineSize, err = strconv.Atoi(v)
		errs = append(errs, wrapEnv(EnvMaxInlineSize, err))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

func wrapEnv(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("natsx: %s: %w", name, err)
}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// WithDefaults returns c with empty settings set to their defaults.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.Name == "" {
		c.Name = "ksef-pipeline"
	}
	if c.StreamMaxAge == 0 {
		c.StreamMaxAge = DefaultStreamMaxAge
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Validate reports contradictory or impossible settings.
func (c Config) Validate() error {
	auth := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeyFile != "", c.User != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	switch {
	case auth > 1:
		return errors.New("natsx: set only one of creds file, nkey file, user or token")
	case c.Password != "" && c.User == "":
		return errors.New("natsx: password without user")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("natsx: TLS client certificate and key must be set together")
	case c.StreamMaxAge < 0 || c.DuplicateWindow < 0:
		return errors.New("natsx: negative stream max age or duplicate window")
	case c.StreamMaxAge > 0 && c.DuplicateWindow > c.StreamMaxAge:
		return errors.New("natsx: duplicate window longer than stream max age")
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("natsx: replicas %d not in 1..5", c.Replicas)
	}
	return c.Subjects().Validate()
}

// ReadStreamName is the stream readers read: ReadStream, else the pipeline's stream.
func (c Config) ReadStreamName() string {
	if c.ReadStream != "" {
		return c.ReadStream
	}
	return StreamName(c.SubjectPrefix)
}

// Subjects returns the subject builder for c's prefix.
func (c Config) Subjects() events.Subjects { return events.Subjects{Prefix: c.SubjectPrefix} }

// Codec returns the event codec with c's limits.
func (c Config) Codec() events.Codec { return events.Codec{MaxInlineSize: c.MaxInlineSize} }

// String describes c without secrets, so a Config can be logged.
func (c Config) String() string {
	r := c
	for _, s := range []*string{&r.Password, &r.Token} {
		if *s != "" {
			*s = "REDACTED"
		}
	}
	type plain Config // no String method: no recursion
	return fmt.Sprintf("%+v", plain(r))
}

// GoString is String, so %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }
