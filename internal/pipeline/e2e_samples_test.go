package pipeline_test

import (
	"fmt"
	"path/filepath"
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
func TestE2EEveryValidSampleAccepted(t *testing.T) {
	samples, err := rulecorpus.Load(filepath.Join(testenv.SharedDir(t), "ksef", "samples", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	cases, err := rulecorpus.Build(samples, time.Now().In(fa3.Warsaw))
	if err != nil {
		t.Fatal(err)
	}
	var published []rulecorpus.Case
	tokens := map[string]string{}
	for _, c := range cases {
		if c.Rule == rulecorpus.RuleAsPublished {
			published = append(published, c)
			tokens[c.Seller] = "token-" + c.Seller
		}
	}
	if len(published) != len(samples) {
		t.Fatalf("%d published cases of %d samples", len(published), len(samples))
	}
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
	for i, id := range ids {
		a := acc[id]
		if a == nil {
			t.Errorf("%s (%s): not accepted: %+v", id, samples[i].Name, rej[id])
			continue
		}
		if err := ksef.ValidateNumber(a.KsefNumber); err != nil {
			t.Errorf("%s: KSeF number: %v", id, err)
		}
		if want := map[bool]string{true: events.ModeBatch, false: events.ModeOnline}[attachments[id]]; sent[id] == nil || sent[id].Mode != want {
			t.Errorf("%s: sent %+v, want in %s mode", id, sent[id], want)
		}
	}
}
