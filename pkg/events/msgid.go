package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// MsgID returns the deterministic event id of e, used both as the event_id
// field and as the Nats-Msg-Id header: "<type>:<business key>". Publishing
// the same fact twice (a retry after a crash) yields the same id, and
// JetStream drops the second copy inside the stream's duplicate window.
//
// Business keys (nip = context_nip):
//
//	invoice.submitted   nip:invoice_id:<16 hex of SHA-256 of the source>
//	invoice.sent        nip:invoice_id:session_id:ksef_invoice_id (empty in batch mode)
//	invoice.accepted    nip:invoice_id
//	invoice.rejected    nip:invoice_id:stage:code
//	invoice.downloaded  nip:query_id:ksef_number
//	invoice.visualize   nip:<ksef_number or invoice_id>:format:language
//	invoice.visualized  nip:<ksef_number or invoice_id>:format:language
//	session.closed      nip:session_id
//	session.upo_stored  nip:session_id
//	query.requested     nip:query_id
//	query.completed     nip:query_id
//	dead_lettered       original_subject:<original msg id or stream sequence>
//	batch.queued        nip:invoice_id:<16 hex of SHA-256 of source>[:r<resubmission>]
//
// The submitted key includes a digest of the source so that a corrected
// invoice resubmitted under the same invoice_id is not mistaken for a
// duplicate.
func MsgID(e Event) string { return e.EventType() + ":" + e.key() }

func join(parts ...string) string { return strings.Join(parts, ":") }

func (e *InvoiceSubmitted) key() string {
	h := sha256.New()
	switch {
	case e.XML != nil:
		h.Write([]byte("xml\x00" + e.XML.Bucket + "\x00" + e.XML.Key + "\x00" + e.XML.SHA256))
	case e.InlineXML != nil:
		h.Write([]byte("inline\x00"))
		h.Write(e.InlineXML)
	default:
		h.Write([]byte("generate\x00"))
		h.Write(e.Generate)
	}
	k := join(e.ContextNIP, e.InvoiceID, hex.EncodeToString(h.Sum(nil)[:8]))
	if e.Resubmission > 0 {
		k = join(k, "r"+strconv.Itoa(e.Resubmission))
	}
	return k
}

func (e *InvoiceSent) key() string {
	return join(e.ContextNIP, e.InvoiceID, e.SessionID, e.KsefInvoiceID)
}

func (e *InvoiceAccepted) key() string { return join(e.ContextNIP, e.InvoiceID) }

func (e *InvoiceRejected) key() string {
	return join(e.ContextNIP, e.InvoiceID, e.Stage, strconv.Itoa(e.Code))
}

func (e *InvoiceDownloaded) key() string { return join(e.ContextNIP, e.QueryID, e.KsefNumber) }

func nameOf(m *Meta, ksefNumber string) string {
	if ksefNumber != "" {
		return ksefNumber
	}
	return m.InvoiceID
}

func (e *VisualizeRequested) key() string {
	return join(e.ContextNIP, nameOf(&e.Meta, e.KsefNumber), e.Format, e.Language)
}

func (e *InvoiceVisualized) key() string {
	return join(e.ContextNIP, nameOf(&e.Meta, e.KsefNumber), e.Format, e.Language)
}

func (e *SessionClosed) key() string    { return join(e.ContextNIP, e.SessionID) }
func (e *SessionUpoStored) key() string { return join(e.ContextNIP, e.SessionID) }
func (e *QueryRequested) key() string   { return join(e.ContextNIP, e.QueryID) }
func (e *QueryCompleted) key() string   { return join(e.ContextNIP, e.QueryID) }

func (e *BatchQueued) key() string {
	h := sha256.Sum256([]byte(e.Source))
	k := join(e.ContextNIP, e.InvoiceID, hex.EncodeToString(h[:8]))
	if e.Resubmission > 0 {
		k = join(k, "r"+strconv.Itoa(e.Resubmission))
	}
	if e.Requeue > 0 {
		k = join(k, "q"+strconv.Itoa(e.Requeue))
	}
	return k
}

func (e *DeadLettered) key() string {
	id := e.OriginalMsgID
	if id == "" {
		id = "seq-" + strconv.FormatUint(e.OriginalSeq, 10)
	}
	return join(e.OriginalSubject, id)
}
