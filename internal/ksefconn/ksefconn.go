// Package ksefconn connects the pipeline's workers to KSeF: where the API is, the token of each
// context, TLS, and the request limits, which every client of every worker shares through one
// limiter.
package ksefconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Environment variables.
const (
	EnvAPIURL          = "KSEF_API_URL"          // base URL of the KSeF REST API 2.0
	EnvTokens          = "KSEF_TOKENS"           // nip=token pairs
	EnvTokensFile      = "KSEF_TOKENS_FILE"      // file of nip=token lines
	EnvCAFile          = "KSEF_API_CA_FILE"      // PEM CA verifying the API's certificate
	EnvLimits          = "KSEF_LIMITS"           // production (default), test (10x) or off
	EnvLimitMultiplier = "KSEF_LIMIT_MULTIPLIER" // scales the table (after KSEF_LIMITS)
	EnvLimitHeadroom   = "KSEF_LIMIT_HEADROOM"   // share of each limit used, (0,1]
	EnvMaxLimitWait    = "KSEF_MAX_LIMIT_WAIT"   // longest a handler blocks for a slot
	EnvRequestTimeout  = "KSEF_REQUEST_TIMEOUT"  // one HTTP request
	EnvUploadHosts     = "KSEF_UPLOAD_HOSTS"     // hosts (host or host:port, comma-separated) batch parts may go to besides the API's
)

// DefaultAPIURL is the emulator's default address.
const DefaultAPIURL = "http://127.0.0.1:8089"

// ErrUnknownContext: no token is configured for the context.
var ErrUnknownContext = errors.New("no KSeF token for the context")

// Settings say how to reach KSeF.
type Settings struct {
	APIURL          string
	Tokens          Tokens
	CAFile          string
	Limits          string // production, test or off
	LimitMultiplier float64
	LimitHeadroom   float64
	MaxLimitWait    time.Duration
	RequestTimeout  time.Duration
	// UploadHosts may receive batch parts besides the API's host (ksef.UploadPolicy).
	UploadHosts []string

	// Now and Sleep are the limiter's clock (default the real one); a benchmark shares an
	// accelerated clock with the emulator. Not read from the environment.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// SettingsFromEnv reads the settings; readFile reads the tokens file.
func SettingsFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (Settings, error) {
	s := Settings{APIURL: getenv(EnvAPIURL), CAFile: getenv(EnvCAFile), Limits: getenv(EnvLimits),
		LimitMultiplier: 1, LimitHeadroom: 1, MaxLimitWait: 5 * time.Second, RequestTimeout: 2 * time.Minute}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	if s.Limits == "" {
		s.Limits = "production"
	}
	var errs []error
	parseFloat := func(env string, dst *float64) {
		if v := getenv(env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				errs = append(errs, fmt.Errorf("%s: want a positive number, got %q", env, v))
				return
			}
			*dst = f
		}
	}
	parseDuration := func(env string, dst *time.Duration) {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s: want a duration, got %q", env, v))
				return
			}
			*dst = d
		}
	}
	parseFloat(EnvLimitMultiplier, &s.LimitMultiplier)
	parseFloat(EnvLimitHeadroom, &s.LimitHeadroom)
	parseDuration(EnvMaxLimitWait, &s.MaxLimitWait)
	parseDuration(EnvRequestTimeout, &s.RequestTimeout)
	for _, h := range strings.Split(getenv(EnvUploadHosts), ",") {
		if h = strings.TrimSpace(h); h != "" {
			s.UploadHosts = append(s.UploadHosts, h)
		}
	}
	s.Tokens = Tokens{}
	if v := getenv(EnvTokens); v != "" {
		t, err := ParseTokens(v)
		errs = append(errs, err)
		s.Tokens.merge(t)
	}
	if path := getenv(EnvTokensFile); path != "" {
		raw, err := readFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTokensFile, err))
		} else {
			t, err := ParseTokens(string(raw))
			errs = append(errs, err)
			s.Tokens.merge(t)
		}
	}
	if _, err := s.LimitTable(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, fmt.Errorf("ksefconn: %w", err)
	}
	return s, nil
}

func (t Tokens) merge(o Tokens) {
	for k, v := range o {
		t[k] = v
	}
}

// LimitTable is the request limits in force; nil when limiting is off.
func (s Settings) LimitTable() (ksef.Limits, error) {
	var base ksef.Limits
	switch strings.ToLower(s.Limits) {
	case "production", "prod", "":
		base = ksef.ProductionLimits()
	case "test":
		base = ksef.ProductionLimits().Scale(10)
	case "off", "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("%s: want production, test or off, got %q", EnvLimits, s.Limits)
	}
	if s.LimitMultiplier != 1 && s.LimitMultiplier > 0 {
		base = base.Scale(s.LimitMultiplier)
	}
	return base, nil
}

// Clients hands out one KSeF client per context, all limited by one shared limiter.
type Clients struct {
	s       Settings
	limiter *ratelimit.Limiter // nil: no limiting
	http    *http.Client
	opts    []ksef.Option

	mu        sync.Mutex
	clients   map[string]*ksef.Client
	limitWait func(ksef.Operation) // see Hooks
}

// NewClients returns the clients of s. store is the limiter's shared state (a JetStream KV
// bucket in production); extra options (an observer for metrics, ...) go to every client.
func NewClients(s Settings, store ratelimit.Store, extra ...ksef.Option) (*Clients, error) {
	table, err := s.LimitTable()
	if err != nil {
		return nil, err
	}
	c := &Clients{s: s, opts: extra, clients: map[string]*ksef.Client{}}
	if table != nil {
		c.limiter = ratelimit.New(store, ratelimit.Config{Limits: table, Headroom: s.LimitHeadroom, Now: s.Now, Sleep: s.Sleep})
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ksefconn: %s: %w", EnvCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ksefconn: %s: no certificate found", EnvCAFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Transport: transport, Timeout: s.RequestTimeout}
	return c, nil
}

// Limiter is the shared limiter, nil when limiting is off.
func (c *Clients) Limiter() *ratelimit.Limiter { return c.limiter }

// For returns the client of a context; the error wraps ErrUnknownContext when no token is set.
func (c *Clients) For(_ context.Context, nip string) (*ksef.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[nip]; cl != nil {
		return cl, nil
	}
	token, ok := c.s.Tokens[nip]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownContext, nip)
	}
	opts := append([]ksef.Option{ksef.WithToken(token), ksef.WithHTTPClient(c.http),
		ksef.WithUploadPolicy(ksef.UploadPolicy{Hosts: c.s.UploadHosts})}, c.opts...)
	if c.limiter != nil {
		lim := c.limiter.For(nip, c.s.MaxLimitWait)
		if c.limitWait != nil {
			lim = observedLimiter{Limiter: lim, l: c.limiter, nip: nip, notify: c.limitWait}
		}
		opts = append(opts, ksef.WithLimiter(lim))
	}
	cl, err := ksef.New(c.s.APIURL, opts...)
	if err != nil {
		return nil, err
	}
	c.clients[nip] = cl
	return cl, nil
}
