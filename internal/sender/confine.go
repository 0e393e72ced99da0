package sender

import (
	"github.com/ksef-pipeline/ksef-pipeline/internal/worker"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// confineXML refuses, as a dead letter, an invoice.submitted whose XML reference is outside its
// context's keys in the invoices bucket (storage.Layout.CheckInvoiceRef): the sender reads with
// the pipeline's storage credentials, which can read every tenant's objects.
func (s *Sender) confineXML(ev *events.InvoiceSubmitted) error {
	if err := s.cfg.Layout.CheckInvoiceRef(ev.ContextNIP, ev.XML.Bucket, ev.XML.Key); err != nil {
		return worker.Permanent(err)
	}
	return nil
}
