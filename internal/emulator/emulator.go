package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

// Emulator is a KSeF REST API 2.0 service: it implements the contract in
// pkg/ksef/ksefapi/openapi.yaml (ksefapi.StrictServerInterface) over in-memory state, with
// the Ministry's processing, limits and failure modes. It is safe for concurrent use.
type Emulator struct {
	cfg       Config
	log       zerolog.Logger
	key       *rsa.PrivateKey
	publicKey string
	validator *fa3.Validator
	renderer  *visualize.Renderer
	tokens    map[string]principal

	limiter *limiter
	faults  *faults
	stats   *stats
	journal *journal
	handler http.Handler

	tempDir string
	ownTemp bool
	xmlDir  string // accepted invoices' XML

	jobs   chan job
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rngMu sync.Mutex
	rng   *mrand.Rand

	mu       sync.Mutex
	sessions map[string]*session
	invoices map[string]*invoice // by technical id
	byKsef   map[string]*invoice // accepted, by KSeF number
	accepted map[string]*invoice // accepted, by duplicate key (seller NIP, type, P_2)
	queries  map[string]*query
	counter  uint64 // identifiers and the technical part of KSeF numbers
	pending  int    // invoices, batches and queries being processed
	idle     chan struct{}
	closed   bool
}

// principal is the context a token acts in.
type principal struct {
	nip string
	// ref is the token's reference number, written to UPOs instead of the token.
	ref string
}

// New starts an emulator: it loads or generates its key pair, compiles the FA(3) schema,
// replays DataDir and starts the invoice workers. Close releases it.
func New(cfg Config) (*Emulator, error) {
	cfg.setDefaults()
	if err := cfg.Faults.Check(); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	e := &Emulator{
		cfg:      cfg,
		log:      zerolog.Nop(),
		tokens:   make(map[string]principal, len(cfg.Tokens)),
		sessions: make(map[string]*session),
		invoices: make(map[string]*invoice),
		byKsef:   make(map[string]*invoice),
		accepted: make(map[string]*invoice),
		queries:  make(map[string]*query),
		idle:     make(chan struct{}),
	}
	if cfg.Logger != nil {
		e.log = *cfg.Logger
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	e.rng = mrand.New(mrand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	e.faults = newFaults(cfg.Faults, uint64(seed))
	e.limiter = newLimiter(cfg.Limits)
	e.stats = newStats()
	for tok, nip := range cfg.Tokens {
		if tok == "" {
			return nil, errors.New("emulator: empty token")
		}
		if !validNIP(nip) {
			return nil, fmt.Errorf("emulator: token context %q is not a NIP (10 digits)", nip)
		}
		e.tokens[tok] = principal{nip: nip, ref: tokenRef(tok)}
	}

	if err := e.setupDirs(); err != nil {
		return nil, err
	}
	if err := e.setupKey(); err != nil {
		e.removeTemp()
		return nil, err
	}
	var err error
	if e.validator = cfg.Validator; e.validator == nil {
		if e.validator, err = fa3.NewValidator(cfg.SchemaDir, fa3.WithMaxSize(cfg.MaxInvoiceSize)); err != nil {
			e.removeTemp()
			return nil, fmt.Errorf("emulator: FA(3) schema: %w", err)
		}
	}
	if !e.validator.SchemaValidated() {
		e.log.Warn().Str("schemaDir", cfg.SchemaDir).Msg("FA(3) schema not found: invoices get structural checks only")
	}
	if e.renderer, err = visualize.NewRenderer(); err != nil {
		e.removeTemp()
		return nil, fmt.Errorf("emulator: visualizer: %w", err)
	}
	if cfg.DataDir != "" {
		if e.journal, err = openJournal(filepath.Join(cfg.DataDir, journalFile), e); err != nil {
			e.removeTemp()
			return nil, err
		}
	}

	e.ctx, e.cancel = context.WithCancel(context.Background())
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	e.jobs = make(chan job, 1024)
	for range workers {
		e.wg.Add(1)
		go e.worker()
	}
	e.handler = e.buildHandler()
	return e, nil
}

func (e *Emulator) setupDirs() error {
	if e.cfg.DataDir != "" {
		if err := os.MkdirAll(e.cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("emulator: data dir: %w", err)
		}
	}
	if e.cfg.TempDir != "" {
		e.tempDir = e.cfg.TempDir
		if err := os.MkdirAll(e.tempDir, 0o700); err != nil {
			return fmt.Errorf("emulator: temp dir: %w", err)
		}
	} else {
		dir, err := os.MkdirTemp("", "ksef-emulator-")
		if err != nil {
			return fmt.Errorf("emulator: temp dir: %w", err)
		}
		e.tempDir, e.ownTemp = dir, true
	}
	e.xmlDir = filepath.Join(e.tempDir, "invoices")
	if e.cfg.DataDir != "" {
		e.xmlDir = filepath.Join(e.cfg.DataDir, "invoices")
	}
	if err := os.MkdirAll(e.xmlDir, 0o700); err != nil {
		e.removeTemp()
		return fmt.Errorf("emulator: invoice dir: %w", err)
	}
	return nil
}

func (e *Emulator) removeTemp() {
	if e.ownTemp {
		os.RemoveAll(e.tempDir)
	}
}

func (e *Emulator) setupKey() error {
	key := e.cfg.PrivateKey
	var err error
	if key == nil && e.cfg.DataDir != "" {
		key, err = loadOrCreateKey(filepath.Join(e.cfg.DataDir, keyFile))
		if err != nil {
			return err
		}
	}
	if key == nil {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return fmt.Errorf("emulator: generating the key pair: %w", err)
		}
	}
	e.key = key
	e.publicKey, err = kcrypto.EncodePublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("emulator: encoding the public key: %w", err)
	}
	return nil
}

// Handler returns the HTTP handler serving the API, the batch upload URLs, /openapi.yaml,
// /docs, /healthz and /emulator/stats.
func (e *Emulator) Handler() http.Handler { return e.handler }

// PublicKey returns the public half of the key that wraps session keys.
func (e *Emulator) PublicKey() *rsa.PublicKey { return &e.key.PublicKey }

// SchemaValidated reports whether invoices are checked against the FA(3) XSD (false when the
// schema directory was not found and only structural checks run).
func (e *Emulator) SchemaValidated() bool { return e.validator.SchemaValidated() }

// Close stops processing, closes the journal and removes the emulator's temporary files.
// Invoices still being processed stay unfinished.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	var err error
	if e.journal != nil {
		err = e.journal.close()
	}
	e.removeTemp()
	return err
}

// WaitIdle waits until every sent invoice, closed batch and started query has been processed
// (their outcomes still show only once the configured delays have passed on the clock).
func (e *Emulator) WaitIdle(ctx context.Context) error {
	for {
		e.mu.Lock()
		n, ch := e.pending, e.idle
		e.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// begin and done count background work for WaitIdle; begin reports false after Close.
func (e *Emulator) begin() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.pending++
	return true
}

// spawn runs f in the background, counted by WaitIdle and waited for by Close; it reports
// false (and does not run f) after Close.
func (e *Emulator) spawn(f func()) bool {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false
	}
	e.pending++
	e.wg.Add(1) // under e.mu: Close cannot be waiting on an empty group yet
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer e.done()
		f()
	}()
	return true
}

func (e *Emulator) done() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending--
	if e.pending == 0 {
		close(e.idle)
		e.idle = make(chan struct{})
	}
}

func (e *Emulator) now() time.Time { return e.cfg.Now() }

// randUint64 draws from the seeded generator.
func (e *Emulator) randUint64() uint64 {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.Uint64()
}

// newRef returns a reference number in the form the UPO schema requires (TNumerReferencyjny):
// YYYYMMDD-KK-XXXXXXXXXX-XXXXXXXXXX-CC, with KK the kind ("SO" online session, "SB" batch
// session, "EE" invoice, "EX" query). Must be called with e.mu held.
func (e *Emulator) newRef(kind string, t time.Time) string {
	e.counter++
	r := e.randUint64() & 0xFFFFFFFFFF
	s := fmt.Sprintf("%s-%s-%010X-%010X", t.UTC().Format("20060102"), kind, e.counter&0xFFFFFFFFFF, r)
	return fmt.Sprintf("%s-%02X", s, crc32.ChecksumIEEE([]byte(s))&0xFF)
}

// tokenRef derives a stable reference number for a token, for the UPO, without revealing it.
func tokenRef(token string) string {
	h := sha256.Sum256([]byte("ksef-emulator token reference\x00" + token))
	s := fmt.Sprintf("20250101-TK-%X-%X", h[:5], h[5:10])
	return fmt.Sprintf("%s-%02X", s, h[10])
}

// validNIP reports whether s is 10 digits in the form the UPO schema accepts (TNip).
func validNIP(s string) bool {
	if len(s) != 10 || s[0] == '0' || (s[1] == '0' && s[2] == '0') {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
