// Package visualizer renders invoices to PDF (and HTML on request) and stores the renderings:
// accepted and downloaded invoices get the configured default rendering, invoice.visualize asks
// for any other. It renders locally with package visualize, the same renderer behind the KSeF
// emulator's ksefInvoiceVisualize, so that visualization spends none of KSeF's request budget.
package visualizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ksef-pipeline/ksef-pipeline/internal/names"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

// Config of the visualizer.
type Config struct {
	// Accepted and Downloaded say whether those invoices are rendered without being asked; an
	// accepted invoice whose submission asked for it (visualize) is rendered anyway.
	Accepted, Downloaded bool
	// Format and Language of those default renderings.
	Format   string
	Language string
	// Environment of the verification QR code: "test", "demo", "prod" or a base URL.
	Environment string
	Layout      storage.Layout
	// MaxInvoiceSize bounds the XML read (KSeF's limit is 1 MB, 3 MB with attachments).
	MaxInvoiceSize int64
}

// DefaultMaxInvoiceSize is KSeF's limit for an invoice with attachments.
const DefaultMaxInvoiceSize = 3 << 20

// Visualizer handles invoice.accepted, invoice.downloaded and invoice.visualize.
type Visualizer struct {
	cfg      Config
	renderer *visualize.Renderer
	store    storage.Store
	pub      worker.Publisher
}

// New returns a visualizer.
func New(cfg Config, renderer *visualize.Renderer, store storage.Store, pub worker.Publisher) *Visualizer {
	if cfg.Format == "" {
		cfg.Format = events.FormatPDF
	}
	if cfg.Language == "" {
		cfg.Language = events.LangPL
	}
	if cfg.MaxInvoiceSize <= 0 {
		cfg.MaxInvoiceSize = DefaultMaxInvoiceSize
	}
	return &Visualizer{cfg: cfg, renderer: renderer, store: store, pub: pub}
}

// job is one rendering to make.
type job struct {
	meta       events.Meta
	ksefNumber string
	xml        *events.ObjectRef
	format     string
	language   string
	offline    bool
	// requested: asked for by invoice.visualize, so the XML is the ERP's, not yet validated by
	// anyone; it is rendered only after the FA(3) schema accepts it.
	requested bool
}

// Consumer describes the visualizer's durable consumer, without a handler (for provisioning it
// ahead): rendering is CPU-bound, so a replica renders a few invoices at once.
func Consumer(subj events.Subjects) worker.Spec {
	return worker.Spec{Name: names.Visualizer, Subjects: []string{subj.InvoiceAccepted(), subj.InvoiceDownloaded(), subj.InvoiceVisualize()},
		Concurrency: 4}
}

// Spec is the visualizer's consumer with its handler.
func (v *Visualizer) Spec(subj events.Subjects) worker.Spec {
	spec := Consumer(subj)
	spec.Handler = v.Handle
	return spec
}

// Handle is the worker handler.
func (v *Visualizer) Handle(ctx context.Context, m *worker.Message) error {
	return worker.Routes(
		worker.On(func(ctx context.Context, ev *events.InvoiceAccepted, _ *worker.Message) error {
			if !v.cfg.Accepted && !ev.Visualize {
				return nil
			}
			return v.render(ctx, job{meta: ev.Meta, ksefNumber: ev.KsefNumber, xml: ev.XML, format: v.cfg.Format, language: v.cfg.Language})
		}),
		worker.On(func(ctx context.Context, ev *events.InvoiceDownloaded, _ *worker.Message) error {
			if !v.cfg.Downloaded {
				return nil
			}
			return v.render(ctx, job{meta: ev.Meta, ksefNumber: ev.KsefNumber, xml: ev.XML, format: v.cfg.Format, language: v.cfg.Language})
		}),
		worker.On(func(ctx context.Context, ev *events.VisualizeRequested, _ *worker.Message) error {
			return v.render(ctx, job{meta: ev.Meta, ksefNumber: ev.KsefNumber, xml: ev.XML, format: ev.Format, language: ev.Language,
				offline: ev.Offline, requested: true})
		}),
	)(ctx, m)
}

func (v *Visualizer) render(ctx context.Context, j job) error {
	if j.xml == nil {
		return worker.Permanent(errors.New("the event has no invoice XML reference"))
	}
	// The store is read with the pipeline's credentials: only the event's own context's invoices.
	if err := v.cfg.Layout.CheckInvoiceRef(j.meta.ContextNIP, j.xml.Bucket, j.xml.Key); err != nil {
		return worker.Permanent(err)
	}
	rc, _, err := v.store.Get(ctx, j.xml.Bucket, j.xml.Key)
	if errors.Is(err, storage.ErrNotFound) {
		return worker.Permanent(fmt.Errorf("the invoice XML %s/%s does not exist", j.xml.Bucket, j.xml.Key))
	}
	if err != nil {
		return fmt.Errorf("reading the invoice XML: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, v.cfg.MaxInvoiceSize+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("reading the invoice XML: %w", err)
	}
	if int64(len(data)) > v.cfg.MaxInvoiceSize {
		return worker.Permanent(fmt.Errorf("the invoice XML is over %d bytes", v.cfg.MaxInvoiceSize))
	}
	var out bytes.Buffer
	err = v.renderer.Render(ctx, &out, data, visualize.Options{
		Format: visualize.Format(j.format), Language: visualize.Language(j.language),
		KsefNumber: j.ksefNumber, Offline: j.offline, Environment: v.cfg.Environment, RequireSchema: j.requested,
	})
	if errors.Is(err, visualize.ErrInvalidInvoice) || errors.Is(err, visualize.ErrUnsupported) {
		return worker.Permanent(err)
	}
	if err != nil {
		return fmt.Errorf("rendering: %w", err)
	}
	name := j.ksefNumber
	if name == "" {
		name = j.meta.InvoiceID
	}
	loc := v.cfg.Layout.Visualization(j.meta.ContextNIP, name, j.format, j.language)
	meta := storage.ObjectMeta{ContentType: contentType(j.format), Metadata: map[string]string{}}
	if j.ksefNumber != "" {
		meta.Metadata[storage.MetaKsefNumber] = j.ksefNumber
	}
	if j.meta.InvoiceID != "" {
		meta.Metadata[storage.MetaInvoiceID] = j.meta.InvoiceID
	}
	info, err := v.store.Put(ctx, loc.Bucket, loc.Key, bytes.NewReader(out.Bytes()), int64(out.Len()), meta)
	if err != nil {
		return fmt.Errorf("storing the rendering: %w", err)
	}
	ev := &events.InvoiceVisualized{KsefNumber: j.ksefNumber, Format: j.format, Language: j.language,
		Document: &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size, ContentType: info.ContentType}}
	ev.Meta = j.meta.Next()
	if err := v.pub.Publish(ctx, ev, nil); err != nil {
		return fmt.Errorf("publishing invoice.visualized: %w", err)
	}
	return nil
}

func contentType(format string) string {
	if format == events.FormatHTML {
		return "text/html; charset=utf-8"
	}
	return "application/pdf"
}
