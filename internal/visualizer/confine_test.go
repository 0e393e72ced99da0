package visualizer_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/internal/visualizer"
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

// TestVisualizeConfinedToContext: invoice.visualize renders only an object of the invoices bucket
// under the request's own context; any other reference — another tenant's invoice, a UPO, a
// rendering, a path climbing out — is dead-lettered as permanent without being read, and a
// request's XML is rendered only after the FA(3) schema accepts it.
func TestVisualizeConfinedToContext(t *testing.T) {
	ctx := context.Background()
	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layout := storage.Layout{Buckets: storage.DefaultBuckets()}
	if err := store.EnsureBuckets(ctx, layout.Buckets.All()...); err != nil {
		t.Fatal(err)
	}
	mine, theirs := demo.Sellers[0], demo.Sellers[1]
	put := func(loc storage.Location, data []byte) *events.ObjectRef {
		info, err := store.Put(ctx, loc.Bucket, loc.Key, bytes.NewReader(data), int64(len(data)), storage.ObjectMeta{})
		if err != nil {
			t.Fatal(err)
		}
		return &events.ObjectRef{Bucket: info.Bucket, Key: info.Key}
	}
	xmlOf := func(seller string) []byte {
		x, err := fa3.Generate(fa3wire.Request(demo.Request(seller, 1, time.Now())))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	own := put(layout.ERPOutbox(mine, "FV-1.xml"), xmlOf(mine))
	sent := put(layout.InvoiceXML(mine, time.Now(), "FV-2"), xmlOf(mine))
	other := put(layout.InvoiceXML(theirs, time.Now(), "FV-1"), xmlOf(theirs))
	upo := put(layout.UPO(mine, time.Now(), "S-1"), []byte("<UPO/>"))
	invalid := put(layout.ERPOutbox(mine, "bad.xml"), bytes.Replace(xmlOf(mine), []byte("<P_2>"), []byte("<P_2>"+string(bytes.Repeat([]byte("x"), 300))), 1))
	climb := &events.ObjectRef{Bucket: layout.Buckets.Invoices, Key: mine + "/../" + theirs + "/" + other.Key[len(theirs)+1:]}

	v, err := fa3.NewValidator(testenv.SchemaDir(t), fa3.WithMaxSize(visualizer.DefaultMaxInvoiceSize))
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := visualize.NewRenderer(visualize.WithValidator(v))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		ref      *events.ObjectRef
		rendered bool
		outside  bool // refused as outside the context (else as invalid)
	}{
		{"the context's upload", own, true, false},
		{"the context's sent invoice", sent, true, false},
		{"another context's invoice", other, false, true},
		{"the context's UPO", upo, false, true},
		{"a path climbing into another context", climb, false, true},
		{"not schema-valid", invalid, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			vz := visualizer.New(visualizer.Config{Layout: layout}, renderer, store, rec)
			ev := &events.VisualizeRequested{XML: c.ref, Format: events.FormatHTML, Language: events.LangPL}
			ev.InvoiceID, ev.ContextNIP = "V-1", mine
			err := vz.Handle(ctx, &worker.Message{Event: ev})
			if c.rendered {
				if err != nil || len(rec.evs) != 1 {
					t.Fatalf("Handle: %v, %d events; want a rendering", err, len(rec.evs))
				}
				return
			}
			if err == nil || worker.DeadLetterKind(err) != events.KindPermanent || len(rec.evs) != 0 {
				t.Fatalf("Handle: %v (%s), %d events; want a permanent refusal", err, worker.DeadLetterKind(err), len(rec.evs))
			}
			if got := errors.Is(err, storage.ErrOutsideContext); got != c.outside {
				t.Errorf("refused as outside the context: %v, want %v (%v)", got, c.outside, err)
			}
		})
	}
}
