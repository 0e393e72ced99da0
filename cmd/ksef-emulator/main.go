// Command ksef-emulator serves a local KSeF REST API 2.0 (see internal/emulator) for
// development, CI, reliability tests and benchmarks.
//
//	ksef-emulator --tokens dev-token=5265877635 --schema-dir ../shared/ksef/official/faktury/schemy/FA
//
// Flags override the environment: KSEF_TOKENS, KSEF_TOKENS_FILE, KSEF_SCHEMA_DIR, KSEF_LIMITS,
// KSEF_LIMIT_MULTIPLIER, KSEF_LOG_LEVEL, KSEF_EMULATOR_ADDR, KSEF_EMULATOR_DATA_DIR,
// KSEF_EMULATOR_BASE_URL. The token file format is shared with the pipeline (nip=token or
// token=nip, one a line).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ksef-pipeline/ksef-pipeline/internal/buildinfo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ksef-emulator:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	addr, tokens, tokensFile, dataDir, baseURL, logLevel, logFormat string
	limits                                                          string
	multiplier                                                      float64
	faultOps, packageFailCodes, cancelCodes, hostile                string
	cfg                                                             emulator.Config
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envFloat := func(name string, def float64) float64 {
		if v, err := strconv.ParseFloat(getenv(name), 64); err == nil {
			return v
		}
		return def
	}
	name := "ksef-emulator"
	if len(args) > 0 {
		name = args[0]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &o.cfg
	fs.StringVar(&o.addr, "addr", env("KSEF_EMULATOR_ADDR", "127.0.0.1:8089"), "listen address")
	fs.StringVar(&o.tokens, "tokens", env("KSEF_TOKENS", ""), "accepted tokens: token=NIP (or NIP=token) pairs, comma separated")
	fs.StringVar(&o.tokensFile, "tokens-file", env("KSEF_TOKENS_FILE", ""), "file of token=NIP (or NIP=token) lines")
	fs.StringVar(&c.SchemaDir, "schema-dir", env("KSEF_SCHEMA_DIR", ""), "FA(3) schema directory (holding schemat_FA(3)_v1-0E.xsd); empty: structural checks only")
	fs.StringVar(&o.dataDir, "data-dir", env("KSEF_EMULATOR_DATA_DIR", ""), "keep the key pair, sessions and invoices here across restarts (default: memory only)")
	fs.StringVar(&o.baseURL, "base-url", env("KSEF_EMULATOR_BASE_URL", ""), "externally visible base URL for batch upload URLs (default: from each request's Host)")
	fs.StringVar(&c.Environment, "environment", "test", "test, demo, prod or a base URL: QR verification links of visualizations; prod also checks NIP check digits as production KSeF does")
	fs.StringVar(&o.logLevel, "log-level", env("KSEF_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or console")
	fs.Int64Var(&c.Seed, "seed", 0, "seed of every random choice (faults, identifiers); 0: from the clock")

	fs.DurationVar(&c.ProcessingDelay, "processing-delay", emulator.DefaultProcessingDelay, "time an invoice stays at 100/150 before its outcome (negative: none)")
	fs.DurationVar(&c.StorageDelay, "storage-delay", emulator.DefaultStorageDelay, "time from acquisition to permanent storage (negative: none)")
	fs.DurationVar(&c.SessionLifetime, "session-lifetime", emulator.DefaultSessionLifetime, "lifetime of an interactive session")
	fs.IntVar(&c.MaxInvoicesPerSession, "max-invoices-per-session", emulator.DefaultMaxInvoicesPerSession, "invoices per session")
	fs.Int64Var(&c.MaxInvoiceSize, "max-invoice-size", emulator.DefaultMaxInvoiceSize, "largest invoice in bytes")
	fs.BoolVar(&c.RejectAttachments, "reject-attachments", false, "invoices with attachments sent in batch sessions end with 415 (online they always do)")
	fs.IntVar(&c.Workers, "workers", 0, "invoice processing goroutines (default GOMAXPROCS)")
	fs.DurationVar(&c.BatchPartWindow, "batch-part-window", emulator.DefaultBatchPartWindow, "upload time per declared batch part")
	fs.DurationVar(&c.QueryDelay, "query-delay", 0, "time before a query's result is ready")
	fs.IntVar(&c.QueryMaxInvoices, "query-max-invoices", emulator.DefaultQueryMaxInvoices, "invoices in one query result before it is truncated")
	fs.Int64Var(&c.QueryMaxPartSize, "query-max-part-size", emulator.DefaultQueryMaxPartSize, "invoice bytes per query result part")
	fs.DurationVar(&c.QueryResultTTL, "query-result-ttl", emulator.DefaultQueryResultTTL, "how long query results can be downloaded")

	fs.StringVar(&o.limits, "limits", env("KSEF_LIMITS", "production"), "request limits: production, test (10x) or off")
	fs.Float64Var(&o.multiplier, "limit-multiplier", envFloat("KSEF_LIMIT_MULTIPLIER", 0), "scale the limits (overrides the --limits factor)")
	fs.IntVar(&c.Limits.LockoutAfter, "lockout-after", 3, "429s within --lockout-window before lock-outs begin (0 or negative: never)")
	fs.DurationVar(&c.Limits.LockoutWindow, "lockout-window", 10*time.Minute, "window of repeated 429s")
	fs.DurationVar(&c.Limits.LockoutBase, "lockout-base", time.Minute, "first lock-out, doubling with each further 429")
	fs.DurationVar(&c.Limits.LockoutMax, "lockout-max", 45*time.Minute, "longest lock-out")

	f := &c.Faults
	fs.DurationVar(&f.Latency, "latency", 0, "latency added to every call")
	fs.DurationVar(&f.Jitter, "jitter", 0, "random latency up to this added to every call")
	fs.Float64Var(&f.SlowRate, "slow-rate", 0, "share of calls delayed by --slow-delay")
	fs.DurationVar(&f.SlowDelay, "slow-delay", 5*time.Second, "delay of slow calls")
	fs.Float64Var(&f.TooManyRate, "fault-429-rate", 0, "share of calls answered 429")
	fs.DurationVar(&f.RetryAfter, "fault-retry-after", time.Second, "Retry-After of injected 429s")
	fs.Float64Var(&f.ServerErrorRate, "fault-5xx-rate", 0, "share of calls answered 5xx (HTML 502/503, empty 503, JSON 500) without effect")
	fs.Float64Var(&f.AmbiguousRate, "fault-ambiguous-rate", 0, "share of sends and closes that take effect but answer 5xx (a batch session closed again then gets 400 1106)")
	fs.Float64Var(&f.StuckRate, "fault-stuck-rate", 0, "share of invoices stuck at 150")
	fs.DurationVar(&f.StuckFor, "fault-stuck-for", time.Hour, "how long stuck invoices stay at 150")
	fs.Float64Var(&f.EarlyExpiryRate, "fault-early-expiry-rate", 0, "share of interactive sessions that expire early")
	fs.DurationVar(&f.EarlyExpiry, "fault-early-expiry", time.Minute, "lifetime of sessions that expire early")
	fs.StringVar(&o.faultOps, "fault-ops", "", "operations the call faults apply to, comma separated (default all; batchPartUpload only when listed)")
	fs.Float64Var(&f.PackageFailRate, "fault-package-fail-rate", 0, "share of closed batch sessions failing as a whole, none of their invoices processed")
	fs.StringVar(&o.packageFailCodes, "fault-package-fail-codes", "405,420,430,435", "session statuses failed packages end with, comma separated (from 405, 415, 420, 430, 435, 500)")
	fs.Float64Var(&f.BatchOpenFailRate, "fault-batch-open-fail-rate", 0, "share of batch sessions failing with 415 right after opening, never processed even when closed")
	fs.Float64Var(&f.CancelRate, "fault-cancel-rate", 0, "share of invoices (online and batch) passing every check but the duplicate one that end with a --fault-cancel-codes status instead")
	fs.StringVar(&o.cancelCodes, "fault-cancel-codes", "405,500,550", "invoice statuses cancelled invoices end with, comma separated (from 405, 500, 550)")
	fs.Float64Var(&f.BatchStuckRate, "fault-batch-stuck-rate", 0, "share of closed batch sessions staying at 150, listing no invoices, for --fault-batch-stuck-for")
	fs.DurationVar(&f.BatchStuckFor, "fault-batch-stuck-for", 0, "how long stuck batch sessions stay at 150 (default: --fault-stuck-for)")
	fs.Float64Var(&f.UploadHangRate, "fault-upload-hang-rate", 0, "share of batch part uploads hanging --fault-upload-hang-for, alternately before storing the part (then 504) and after (then 201)")
	fs.DurationVar(&f.UploadHangFor, "fault-upload-hang-for", time.Minute, "how long hanging part uploads hang")
	fs.StringVar(&o.hostile, "fault-hostile", "", "answer a context's calls of an operation with what the API never sends: NIP:operation:answer[:times], comma separated; answers html-502, html-200, truncated-json, wrong-content-type, huge, and for ksefInvoiceQueryResult unsafe packages zip-* (internal/emulator/hostile.go)")

	if err := fs.Parse(args[min(1, len(args)):]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, o.complete(getenv)
}

// complete turns the options into the emulator's Config.
func (o *options) complete(getenv func(string) string) error {
	c := &o.cfg
	c.DataDir, c.BaseURL = o.dataDir, o.baseURL
	c.Tokens = map[string]string{}
	add := func(src, what string) error {
		t, err := emulator.ParseTokens(src)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for tok, nip := range t {
			c.Tokens[tok] = nip
		}
		return nil
	}
	if o.tokensFile != "" {
		b, err := os.ReadFile(o.tokensFile)
		if err != nil {
			return fmt.Errorf("reading the tokens file: %w", err)
		}
		if err := add(string(b), o.tokensFile); err != nil {
			return err
		}
	}
	if err := add(o.tokens, "--tokens"); err != nil {
		return err
	}
	if len(c.Tokens) == 0 {
		return errors.New("no tokens: give --tokens token=NIP,... or --tokens-file (or KSEF_TOKENS, KSEF_TOKENS_FILE)")
	}
	switch o.limits {
	case "production", "":
		c.Limits.Multiplier = 1
	case "test":
		c.Limits.Multiplier = 10
	case "off":
		c.Limits.Disabled = true
	default:
		return fmt.Errorf("--limits %q: want production, test or off", o.limits)
	}
	if o.multiplier > 0 {
		c.Limits.Multiplier = o.multiplier
	}
	if c.Limits.LockoutAfter == 0 {
		c.Limits.LockoutAfter = -1 // the flag's 0 means none, not the library default
	}
	var err error
	if c.Faults.PackageFailCodes, err = parseCodes(o.packageFailCodes); err != nil {
		return fmt.Errorf("--fault-package-fail-codes: %w", err)
	}
	if c.Faults.CancelCodes, err = parseCodes(o.cancelCodes); err != nil {
		return fmt.Errorf("--fault-cancel-codes: %w", err)
	}
	if c.Faults.Hostile, err = emulator.ParseHostile(o.hostile); err != nil {
		return fmt.Errorf("--fault-hostile: %w", err)
	}
	if err := c.Faults.Check(); err != nil {
		return err
	}
	known := map[ksef.Operation]bool{ksef.OpBatchPartUpload: true}
	for _, op := range ksef.Operations() {
		known[op] = true
	}
	for _, s := range strings.Split(o.faultOps, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[ksef.Operation(s)] {
			return fmt.Errorf("--fault-ops: unknown operation %q", s)
		}
		c.Faults.Ops = append(c.Faults.Ops, ksef.Operation(s))
	}
	if c.ProcessingDelay == 0 {
		c.ProcessingDelay = -1 // an explicit 0 means no delay
	}
	if c.StorageDelay == 0 {
		c.StorageDelay = -1
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if buildinfo.Requested(args[1:]) {
		return buildinfo.Print(stdout, "ksef-emulator")
	}
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	var out io.Writer = stderr
	if o.logFormat == "console" {
		out = zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}
	}
	log := zerolog.New(out).Level(level).With().Timestamp().Str("service", "ksef-emulator").Logger()
	o.cfg.Logger = &log

	e, err := emulator.New(o.cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           withMetrics(e),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	contexts := make([]string, 0, len(o.cfg.Tokens))
	for _, nip := range o.cfg.Tokens {
		contexts = append(contexts, nip)
	}
	log.Info().Str("addr", ln.Addr().String()).Strs("contexts", contexts).Bool("schemaValidated", e.SchemaValidated()).
		Str("limits", o.limits).Float64("limitMultiplier", o.cfg.Limits.Multiplier).Str("dataDir", o.cfg.DataDir).Msg("serving the KSeF REST API 2.0")
	fmt.Fprintf(stdout, "ksef-emulator listening on http://%s (docs: /docs, metrics: /metrics)\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return e.Close()
}

// parseCodes reads a comma-separated list of status codes.
func parseCodes(s string) ([]int, error) {
	var codes []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a status code", f)
		}
		codes = append(codes, n)
	}
	return codes, nil
}
