package sender

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// BatchConfig says how a context's invoices go through batch sessions. When the next online send
// is further away than the KSeF client waits for a request slot (KSEF_MAX_LIMIT_WAIT), the
// context's online budget cannot carry its backlog, and invoices are gathered into batch
// packages instead, until the backlog drains and online slots are free again.
type BatchConfig struct {
	// Disabled keeps every invoice online (waiting for the limits).
	Disabled bool
	// Linger is how long a package waits for more invoices after its first (default 3 s).
	Linger time.Duration
	// MaxInvoices per package (KSeF: at most 10,000 per session).
	MaxInvoices int
	// MaxPartSize is the largest part before encryption (KSeF: 100 MB); MaxParts the most parts
	// (KSeF: 50).
	MaxPartSize int64
	MaxParts    int
	// UploadConcurrency is how many parts upload at once (the Ministry recommends parallel
	// uploads; they are not limited).
	UploadConcurrency int
	// TempDir holds a package and its encrypted parts while they are sent ("" = os.TempDir()).
	TempDir string
	// Open, when set, counts the batch sessions open (from opening to closing).
	Open Gauge
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.Linger <= 0 {
		c.Linger = 3 * time.Second
	}
	if c.MaxInvoices <= 0 || c.MaxInvoices > 10000 {
		c.MaxInvoices = 10000
	}
	if c.MaxPartSize <= 0 || c.MaxPartSize > 100_000_000 {
		c.MaxPartSize = 100_000_000
	}
	if c.MaxParts <= 0 || c.MaxParts > 50 {
		c.MaxParts = 50
	}
	if c.UploadConcurrency <= 0 {
		c.UploadConcurrency = 4
	}
	return c
}

// batchItem is one invoice waiting in a package. Its XML stays in storage until the package is
// built, so a package of 10,000 invoices costs no memory.
type batchItem struct {
	ev    *events.InvoiceSubmitted
	key   string // state key
	rev   uint64 // state revision when it joined
	state State
	done  chan error
}

// batcher gathers the invoices of each context into packages.
type batcher struct {
	s   *Sender
	cfg BatchConfig
	// base carries the worker's logger; a package outlives the handlers waiting for it.
	base context.Context

	mu      sync.Mutex
	pending map[string]*pendingBatch // by context NIP
}

type pendingBatch struct {
	items []*batchItem
	full  chan struct{} // closed when the package reached MaxInvoices
}

func newBatcher(s *Sender, cfg BatchConfig, log zerolog.Logger) *batcher {
	return &batcher{s: s, cfg: cfg.withDefaults(), base: log.WithContext(context.Background()), pending: map[string]*pendingBatch{}}
}

// add puts an invoice into its context's next package and waits until the package was sent
// (nil: the invoice is in KSeF's hands and invoice.sent was published) or failed.
func (b *batcher) add(ctx context.Context, nip string, it *batchItem) error {
	it.done = make(chan error, 1)
	b.mu.Lock()
	p := b.pending[nip]
	if p == nil {
		p = &pendingBatch{full: make(chan struct{})}
		b.pending[nip] = p
		go b.flushLater(nip, p)
	}
	p.items = append(p.items, it)
	if len(p.items) == b.cfg.MaxInvoices {
		delete(b.pending, nip)
		close(p.full)
	}
	b.mu.Unlock()
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		// The package may still be sent; the state records it and a redelivery reconciles.
		return ctx.Err()
	}
}

// flushLater sends a package once it is full or has lingered.
func (b *batcher) flushLater(nip string, p *pendingBatch) {
	t := time.NewTimer(b.cfg.Linger)
	defer t.Stop()
	select {
	case <-p.full:
	case <-t.C:
		b.mu.Lock()
		if b.pending[nip] == p {
			delete(b.pending, nip)
		}
		b.mu.Unlock()
	}
	// Sent in the background of the handlers waiting for it; bounded by their patience.
	ctx, cancel := context.WithTimeout(b.base, 30*time.Minute)
	defer cancel()
	err := b.send(ctx, nip, p.items)
	for _, it := range p.items {
		it.done <- err
	}
}

// send builds, encrypts, declares, uploads and closes one package, then publishes invoice.sent
// for each of its invoices.
func (b *batcher) send(ctx context.Context, nip string, items []*batchItem) error {
	log := zerolog.Ctx(ctx)
	client, err := b.s.clients(ctx, nip)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(b.cfg.TempDir, "ksef-batch-")
	if err != nil {
		return fmt.Errorf("batch: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	pkg, err := b.buildPackage(ctx, dir, items)
	if err != nil {
		return err
	}
	info, key, err := client.NewEncryption(ctx)
	if err != nil {
		return ksefconn.Outcome(err, "batch: encryption key")
	}
	defer key.Zero()
	parts, err := b.encryptParts(dir, pkg, key)
	if err != nil {
		return err
	}
	declared := make([]ksefapi.BatchPartInfo, len(parts))
	for i, p := range parts {
		declared[i] = ksefapi.BatchPartInfo{Ordinal: int32(i + 1), PartSize: p.size, PartHash: p.hash}
	}
	opened, err := client.OpenBatchSession(ctx, ksefapi.KsefSessionOpenBatchRequest{
		InvoiceVersion: ksefapi.V3, EncryptionInfo: info,
		BatchInfo: ksefapi.BatchInfo{BatchSize: pkg.size, BatchHash: pkg.hash, BatchParts: declared},
	})
	if err != nil {
		return ksefconn.Outcome(err, "batch: opening the session")
	}
	sessionID := opened.Id
	if b.cfg.Open != nil {
		b.cfg.Open.Inc()
		defer b.cfg.Open.Dec()
	}
	// Record the session in every invoice's state before anything is uploaded: a redelivered
	// invoice then reconciles with this session instead of being sent again.
	for _, it := range items {
		it.state.Status, it.state.SessionID, it.state.Mode, it.state.UpdatedAt = StatusSending, sessionID, events.ModeBatch, b.s.cfg.Now()
		ok, err := b.s.states.Put(ctx, it.key, &it.state, it.rev)
		if err != nil {
			return fmt.Errorf("batch: recording the session: %w", err)
		}
		if !ok {
			log.Warn().Str("invoice_id", it.ev.InvoiceID).Msg("invoice state changed while it waited for a batch")
		}
		_, it.rev, _ = b.s.states.Get(ctx, it.key)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.cfg.UploadConcurrency)
	for _, up := range opened.PartUploadRequests {
		idx := int(up.Ordinal) - 1
		if idx < 0 || idx >= len(parts) {
			return fmt.Errorf("batch: KSeF asked for part %d of %d", up.Ordinal, len(parts))
		}
		g.Go(func() error {
			f, err := os.Open(parts[idx].path)
			if err != nil {
				return err
			}
			defer f.Close()
			return client.UploadBatchPart(gctx, up, f, parts[idx].size)
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("batch: uploading session %s: %w", sessionID, err)
	}
	if _, err := client.CloseSession(ctx, sessionID); err != nil && !errors.Is(err, ksef.ErrAmbiguous) {
		return ksefconn.Outcome(err, "batch: closing session "+sessionID)
	}
	log.Info().Str("session_id", sessionID).Int("invoices", len(items)).Int64("bytes", pkg.size).Int("parts", len(parts)).Msg("batch package sent")
	for _, it := range items {
		it.state.Status, it.state.UpdatedAt = StatusSent, b.s.cfg.Now()
		if _, err := b.s.states.Put(ctx, it.key, &it.state, it.rev); err != nil {
			log.Warn().Err(err).Msg("recording the sent state failed")
		}
		if err := b.s.publishSent(ctx, it.ev, &it.state); err != nil {
			return err
		}
	}
	closed := &events.SessionClosed{SessionID: sessionID, Mode: events.ModeBatch, InvoiceCount: len(items)}
	closed.ContextNIP = nip
	if err := b.s.pub.Publish(ctx, closed, nil); err != nil {
		log.Error().Err(err).Str("session_id", sessionID).Msg("publishing session.closed failed; its UPO will not be fetched")
	}
	return nil
}

type packageFile struct {
	path string
	size int64
	hash string
}

// buildPackage streams the invoices from storage into a ZIP file.
func (b *batcher) buildPackage(ctx context.Context, dir string, items []*batchItem) (packageFile, error) {
	f, err := os.CreateTemp(dir, "package-*.zip")
	if err != nil {
		return packageFile{}, err
	}
	defer f.Close()
	d := kcrypto.NewDigest()
	zw := zip.NewWriter(io.MultiWriter(f, d))
	for i, it := range items {
		w, err := zw.Create(fmt.Sprintf("%05d.xml", i+1))
		if err != nil {
			return packageFile{}, err
		}
		ref := it.state.XML
		rc, _, err := b.s.store.Get(ctx, ref.Bucket, ref.Key)
		if err != nil {
			return packageFile{}, fmt.Errorf("batch: reading %s: %w", ref.Key, err)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return packageFile{}, fmt.Errorf("batch: reading %s: %w", ref.Key, err)
		}
	}
	if err := zw.Close(); err != nil {
		return packageFile{}, err
	}
	return packageFile{path: f.Name(), size: d.Size(), hash: d.Sum()}, nil
}

// encryptParts splits the package into at most MaxParts pieces of at most MaxPartSize bytes and
// encrypts each with the session key; the declared size and hash are the encrypted part's.
func (b *batcher) encryptParts(dir string, pkg packageFile, key *kcrypto.SessionKey) ([]packageFile, error) {
	n := (pkg.size + b.cfg.MaxPartSize - 1) / b.cfg.MaxPartSize
	if n > int64(b.cfg.MaxParts) {
		return nil, fmt.Errorf("batch: the package of %d bytes needs %d parts, over %d", pkg.size, n, b.cfg.MaxParts)
	}
	src, err := os.Open(pkg.path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	parts := make([]packageFile, 0, n)
	for i := int64(0); i < n; i++ {
		out, err := os.CreateTemp(dir, fmt.Sprintf("part-%02d-*.enc", i+1))
		if err != nil {
			return nil, err
		}
		d := kcrypto.NewDigest()
		ew, err := kcrypto.EncryptWriter(io.MultiWriter(out, d), key.Key, key.IV)
		if err == nil {
			_, err = io.Copy(ew, io.LimitReader(src, b.cfg.MaxPartSize))
		}
		if err == nil {
			err = ew.Close()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("batch: encrypting part %d: %w", i+1, err)
		}
		parts = append(parts, packageFile{path: out.Name(), size: d.Size(), hash: d.Sum()})
	}
	return parts, nil
}
