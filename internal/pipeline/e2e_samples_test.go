package pipeline_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/rulecorpus"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// TestE2EEveryValidSampleAccepted submits every published valid sample through the whole
// pipeline (each with an invoice number of its own, since some share seller, kind and number):
// every one is accepted, whatever its arithmetic, those with attachments through a batch session.
// So are the samples with totals made not to add up, with the same warnings on invoice.sent and
// invoice.accepted.
func TestE2EEveryValidSampleAccepted(t *testing.T) {
	samples, err := rulecorpus.Load(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, time.Now().In(fa3.Warsaw))
	if err != nil {
		t.Fatal(err)
	}
	var published, warned []rulecorpus.Case
	tokens := map[string]string{}
	for _, c := range cases {
		switch {
		case c.Rule == rulecorpus.RuleAsPublished:
			published = append(published, c)
		case c.Warns:
			warned = append(warned, c) // totals that don't add up: accepted, with warnings
		default:
			continue
		}
		tokens[c.Seller] = "token-" + c.Seller
	}
	if len(published) != len(samples) {
		t.Fatalf("%d published cases of %d samples", len(published), len(samples))
	}
	nPublished := len(published)
	published = append(published, warned...)
	p := start(t, options{extraTokens: tokens})
	p.run(p.rt)
	var ids []string
	attachments := map[string]bool{}
	for i, c := range published {
		s := &submission{id: fmt.Sprintf("SAMPLE-%d", i+1), seller: c.Seller, xml: c.XML, ev: &events.InvoiceSubmitted{}}
		s.ev.InvoiceID, s.ev.ContextNIP = s.id, c.Seller
		p.attach(s, []string{viaInline, viaObject}[i%2])
		p.publish(s.ev)
		ids = append(ids, s.id)
		attachments[s.id] = c.Attachments
	}
	evs := p.await(90*time.Second, "every published sample settled", settled(ids))
	acc, rej := byInvoice[*events.InvoiceAccepted](evs), byInvoice[*events.InvoiceRejected](evs)
	sent := byInvoice[*events.InvoiceSent](evs)
	batchWarned := 0
	for i, id := range ids {
		a := acc[id]
		if a == nil {
			t.Errorf("%s (%s): not accepted: %+v", id, published[i].Name, rej[id])
			continue
		}
		if i >= nPublished {
			// Warnings ride on invoice.sent (online or batch) and are copied to invoice.accepted.
			if sent[id] == nil || len(sent[id].Warnings) == 0 || !slices.Equal(a.Warnings, sent[id].Warnings) {
				t.Errorf("%s: warnings sent %q, accepted %q", published[i].Name, sent[id].Warnings, a.Warnings)
			}
			if attachments[id] {
				batchWarned++
			}
		}
		if err := ksef.ValidateNumber(a.KsefNumber); err != nil {
			t.Errorf("%s: KSeF number: %v", id, err)
		}
		if want := map[bool]string{true: events.ModeBatch, false: events.ModeOnline}[attachments[id]]; sent[id] == nil || sent[id].Mode != want {
			t.Errorf("%s: sent %+v, want in %s mode", id, sent[id], want)
		}
	}
	t.Logf("%d samples, %d with warnings (%d of them through a batch session)", nPublished, len(warned), batchWarned)
}
