package visualizer_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/visualizer"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

// recorder keeps what the visualizer publishes.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(_ context.Context, ev events.Event, _ nats.Header) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return nil
}

func TestAcceptedRenderedOnlyWhenAskedOrConfigured(t *testing.T) {
	ctx := context.Background()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layout := storage.Layout{Buckets: storage.DefaultBuckets()}
	if err := store.EnsureBuckets(ctx, layout.Buckets.All()...); err != nil {
		t.Fatal(err)
	}
	xml, err := fa3.Generate(fa3wire.Request(demo.Request(demo.Sellers[0], 1, time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.Put(ctx, layout.Buckets.Invoices, demo.Sellers[0]+"/sent/1.xml", bytes.NewReader(xml), int64(len(xml)), storage.ObjectMeta{ContentType: "application/xml"})
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := visualize.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	accepted := func(visualize bool) *worker.Message {
		ev := &events.InvoiceAccepted{KsefNumber: "5261040828-20261125-0100001AF629-00", Visualize: visualize,
			XML: &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size}}
		ev.InvoiceID, ev.ContextNIP = "FV/1", demo.Sellers[0]
		return &worker.Message{Event: ev}
	}
	for _, tc := range []struct {
		name          string
		all, asked    bool
		wantRendering bool
	}{
		{"not asked, not configured", false, false, false},
		{"asked by the submission", false, true, true},
		{"configured for every invoice", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			v := visualizer.New(visualizer.Config{Accepted: tc.all, Layout: layout}, renderer, store, rec)
			if err := v.Handle(ctx, accepted(tc.asked)); err != nil {
				t.Fatal(err)
			}
			if got := len(rec.evs) == 1; got != tc.wantRendering {
				t.Fatalf("published %d events, want a rendering: %v", len(rec.evs), tc.wantRendering)
			}
			if !tc.wantRendering {
				return
			}
			vis := rec.evs[0].(*events.InvoiceVisualized)
			got, err := store.Stat(ctx, vis.Document.Bucket, vis.Document.Key)
			if err != nil || got.ContentType != "application/pdf" || got.Size == 0 {
				t.Fatalf("stored rendering %+v, %v", got, err)
			}
		})
	}
}
