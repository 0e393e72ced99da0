package events

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxIDLen bounds identifiers (invoice_id, query_id, session_id, ...), which
// end up in message ids and storage keys.
const MaxIDLen = 256

// validateMeta checks the common fields. wantInvoice makes invoice_id
// required; context_nip is required by every event but dead_lettered.
func (m *Meta) validate(wantInvoice, wantNIP bool) error {
	if m.V != Version {
		return ErrUnknownVersion
	}
	if m.CorrelationID != "" {
		if err := checkID("correlation_id", m.CorrelationID); err != nil {
			return err
		}
	}
	if m.OccurredAt.IsZero() {
		return missing("occurred_at")
	}
	if wantInvoice || m.InvoiceID != "" {
		if err := checkID("invoice_id", m.InvoiceID); err != nil {
			return err
		}
	}
	if wantNIP || m.ContextNIP != "" {
		if err := checkNIP("context_nip", m.ContextNIP); err != nil {
			return err
		}
	}
	// Checked last: it is derived from the fields above.
	return checkID("event_id", m.EventID)
}

// checkID accepts 1..MaxIDLen bytes of valid UTF-8 without control
// characters.
func checkID(field, s string) error {
	switch {
	case s == "":
		return missing(field)
	case len(s) > MaxIDLen:
		return invalid(field, "longer than "+strconv.Itoa(MaxIDLen)+" bytes")
	case !utf8.ValidString(s):
		return invalid(field, "not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "contains a control character")
		}
	}
	return nil
}

// checkNIP accepts exactly ten ASCII digits. The NIP checksum is not
// verified: test environments use NIPs that fail it.
func checkNIP(field, s string) error {
	if s == "" {
		return missing(field)
	}
	if len(s) != 10 {
		return invalid(field, "not 10 digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return invalid(field, "not 10 digits")
		}
	}
	return nil
}

func checkHash(field, s string) error {
	if s == "" {
		return missing(field)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return invalid(field, "not a base64 SHA-256 digest")
	}
	return nil
}

func checkOneOf(field, s string, allowed ...string) error {
	if s == "" {
		return missing(field)
	}
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return invalid(field, strconv.Quote(s)+" is not one of "+quoteAll(allowed))
}

func quoteAll(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

func checkTime(field string, t Time) error {
	if t.IsZero() {
		return missing(field)
	}
	return nil
}

func checkCount(field string, n int) error {
	if n < 0 {
		return invalid(field, "negative")
	}
	return nil
}

// Validate checks the reference: bucket and key set, size not negative,
// sha256 (when set) a base64 SHA-256 digest.
func (r *ObjectRef) Validate() error { return r.validate("") }

func (r *ObjectRef) validate(field string) error {
	if r == nil {
		return missing(field)
	}
	p := field
	if p != "" {
		p += "."
	}
	if r.Bucket == "" {
		return missing(p + "bucket")
	}
	if r.Key == "" {
		return missing(p + "key")
	}
	if r.SHA256 != "" {
		if err := checkHash(p+"sha256", r.SHA256); err != nil {
			return err
		}
	}
	if r.Size < 0 {
		return invalid(p+"size", "negative")
	}
	return nil
}

// first returns the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *InvoiceSubmitted) Validate() error {
	if err := e.Meta.validate(true, true); err != nil {
		return err
	}
	n := 0
	if e.XML != nil {
		n++
		if err := e.XML.validate("xml"); err != nil {
			return err
		}
	}
	if e.InlineXML != nil {
		n++
		if len(e.InlineXML) == 0 {
			return invalid("inline_xml", "empty")
		}
	}
	if e.Generate != nil {
		n++
		if !json.Valid(e.Generate) {
			return invalid("generate", "not JSON")
		}
	}
	switch n {
	case 0:
		return invalid("xml", "one of xml, inline_xml, generate must be set")
	case 1:
		return nil
	default:
		return invalid("xml", "only one of xml, inline_xml, generate may be set")
	}
}

func (e *InvoiceSent) Validate() error {
	return first(
		e.Meta.validate(true, true),
		e.checkInvoiceID(),
		checkID("session_id", e.SessionID),
		checkOneOf("mode", e.Mode, ModeOnline, ModeBatch),
		checkHash("invoice_hash", e.InvoiceHash),
		e.XML.validate("xml"),
		checkTime("sent_at", e.SentAt),
		checkID("invoice_number", e.InvoiceNumber),
	)
}

// checkInvoiceID: an online send always has KSeF's technical id; a batch invoice gets one only
// when KSeF unpacks the package, and is found in its session by hash.
func (e *InvoiceSent) checkInvoiceID() error {
	if e.Mode == ModeBatch && e.KsefInvoiceID == "" {
		return nil
	}
	return checkID("ksef_invoice_id", e.KsefInvoiceID)
}

func (e *InvoiceAccepted) Validate() error {
	err := first(
		e.Meta.validate(true, true),
		checkID("ksef_number", e.KsefNumber),
		checkTime("acquisition_date", e.AcquisitionDate),
		checkID("session_id", e.SessionID),
		checkHash("invoice_hash", e.InvoiceHash),
		e.XML.validate("xml"),
	)
	if err == nil && e.UPO != nil {
		err = e.UPO.validate("upo")
	}
	return err
}

func (e *InvoiceRejected) Validate() error {
	err := first(
		e.Meta.validate(true, true),
		checkCount("code", e.Code),
		checkID("description", e.Description),
		checkID("stage", e.Stage),
	)
	if err == nil && e.OriginalKsefNumber != "" {
		err = checkID("original_ksef_number", e.OriginalKsefNumber)
	}
	return err
}

func (e *InvoiceDownloaded) Validate() error {
	return first(
		e.Meta.validate(false, true),
		checkID("query_id", e.QueryID),
		checkID("ksef_number", e.KsefNumber),
		checkOneOf("subject_type", e.SubjectType, SubjectSeller, SubjectBuyer, SubjectThird, SubjectAuthorized),
		e.XML.validate("xml"),
	)
}

// checkName requires a KSeF number or an invoice id to name the output.
func checkName(m *Meta, ksefNumber string) error {
	if ksefNumber != "" {
		return checkID("ksef_number", ksefNumber)
	}
	if m.InvoiceID == "" {
		return invalid("ksef_number", "ksef_number or invoice_id must be set")
	}
	return nil
}

func (e *VisualizeRequested) Validate() error {
	return first(
		e.Meta.validate(false, true),
		checkName(&e.Meta, e.KsefNumber),
		e.XML.validate("xml"),
		checkOneOf("format", e.Format, FormatPDF, FormatHTML),
		checkOneOf("language", e.Language, LangPL, LangEN, LangPLEN),
	)
}

func (e *InvoiceVisualized) Validate() error {
	return first(
		e.Meta.validate(false, true),
		checkName(&e.Meta, e.KsefNumber),
		checkOneOf("format", e.Format, FormatPDF, FormatHTML),
		checkOneOf("language", e.Language, LangPL, LangEN, LangPLEN),
		e.Document.validate("document"),
	)
}

func (e *SessionClosed) Validate() error {
	return first(
		e.Meta.validate(false, true),
		checkID("session_id", e.SessionID),
		checkOneOf("mode", e.Mode, ModeOnline, ModeBatch),
		checkCount("invoice_count", e.InvoiceCount),
	)
}

func (e *BatchQueued) Validate() error {
	return first(
		e.Meta.validate(true, true),
		checkID("source", e.Source),
		checkCount("resubmission", e.Resubmission),
		e.XML.validate("xml"),
		checkHash("invoice_hash", e.InvoiceHash),
		checkID("invoice_number", e.InvoiceNumber),
	)
}

func (e *SessionUpoStored) Validate() error {
	if err := first(
		e.Meta.validate(false, true),
		checkID("session_id", e.SessionID),
		e.UPO.validate("upo"),
	); err != nil {
		return err
	}
	for i, n := range e.KsefNumbers {
		if err := checkID("ksef_numbers["+strconv.Itoa(i)+"]", n); err != nil {
			return err
		}
	}
	return nil
}

func (e *QueryRequested) Validate() error {
	err := first(
		e.Meta.validate(false, true),
		checkID("query_id", e.QueryID),
		checkOneOf("subject_type", e.SubjectType, SubjectSeller, SubjectBuyer, SubjectThird, SubjectAuthorized),
		checkTime("from", e.From),
	)
	if err == nil && !e.To.IsZero() && e.To.Before(e.From.Time) {
		err = invalid("to", "before from")
	}
	return err
}

func (e *QueryCompleted) Validate() error {
	if err := first(
		e.Meta.validate(false, true),
		checkID("query_id", e.QueryID),
		checkCount("invoice_count", e.InvoiceCount),
		checkCount("truncated_continuations", e.TruncatedContinuations),
	); err != nil {
		return err
	}
	for i := range e.Parts {
		if err := e.Parts[i].validate("parts[" + strconv.Itoa(i) + "]"); err != nil {
			return err
		}
	}
	return nil
}

func (e *DeadLettered) Validate() error {
	return first(
		e.Meta.validate(false, false),
		checkID("original_subject", e.OriginalSubject),
		checkOneOf("error_kind", string(e.ErrorKind),
			string(KindMalformed), string(KindUnknownVersion), string(KindInvalid),
			string(KindPermanent), string(KindMaxDeliver), string(KindPanic), string(KindDeadline)),
		checkCount("deliveries", e.Deliveries),
		checkID("stage", e.Stage),
		checkReason(e.Reason),
	)
}

func checkReason(s string) error {
	if s == "" {
		return missing("reason")
	}
	return nil
}
