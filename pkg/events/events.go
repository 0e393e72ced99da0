package events

// Version is the schema version this package writes and reads (field "v").
const Version = 1

// Event types. The type of an event is also its subject without prefix,
// except for [DeadLettered], which is published on "dlq.<original subject>".
const (
	TypeInvoiceSubmitted   = "invoice.submitted"
	TypeInvoiceSent        = "invoice.sent"
	TypeInvoiceAccepted    = "invoice.accepted"
	TypeInvoiceRejected    = "invoice.rejected"
	TypeInvoiceDownloaded  = "invoice.downloaded"
	TypeVisualizeRequested = "invoice.visualize"
	TypeInvoiceVisualized  = "invoice.visualized"
	TypeSessionClosed      = "session.closed"
	TypeSessionUpoStored   = "session.upo_stored"
	TypeQueryRequested     = "query.requested"
	TypeQueryCompleted     = "query.completed"
	TypeDeadLettered       = "dead_lettered"
	// TypeBatchQueued is the sender's own work queue, published on "batch.queued.<context_nip>".
	TypeBatchQueued = "batch.queued"
)

// Types lists every event type in publication order of a typical flow.
func Types() []string {
	return []string{
		TypeInvoiceSubmitted, TypeInvoiceSent, TypeInvoiceAccepted, TypeInvoiceRejected,
		TypeInvoiceDownloaded, TypeVisualizeRequested, TypeInvoiceVisualized,
		TypeSessionClosed, TypeSessionUpoStored, TypeQueryRequested, TypeQueryCompleted,
		TypeDeadLettered, TypeBatchQueued,
	}
}

// Event is implemented by the pointer types of this package (*InvoiceSubmitted,
// ...). The set is closed: the unexported method keeps others from adding
// types the rest of the pipeline would not know.
type Event interface {
	// EventType returns the "type" field value, e.g. "invoice.submitted".
	EventType() string
	// Common returns the fields every event carries; callers may set them.
	Common() *Meta
	// Validate reports the first missing or invalid field as a *FieldError.
	// Size limits are checked by [Codec], not here.
	Validate() error
	// key returns the business key MsgID derives the event id from.
	key() string
}

// Meta holds the fields common to all events.
type Meta struct {
	// V is the schema version; Encode sets 0 to Version.
	V int `msgpack:"v"`
	// Type is the event type; Encode sets it from EventType.
	Type string `msgpack:"type"`
	// EventID is deterministic (see MsgID); Encode sets it.
	EventID string `msgpack:"event_id"`
	// CorrelationID ties together all events caused by one ERP request.
	// Encode sets an empty one to EventID (a new chain starts here).
	CorrelationID string `msgpack:"correlation_id"`
	// OccurredAt is when the fact happened; Encode sets a zero one to now.
	OccurredAt Time `msgpack:"occurred_at"`
	// InvoiceID is the ERP's own identifier of the invoice. Required for
	// invoice.submitted/sent/accepted/rejected.
	InvoiceID string `msgpack:"invoice_id,omitempty"`
	// ContextNIP is the 10-digit NIP of the KSeF context (the seller for
	// sent invoices, the querying subject for downloads).
	ContextNIP string `msgpack:"context_nip,omitempty"`
}

// Next returns the identity an event caused by this one inherits: its correlation id, invoice
// id and context; the rest is the new event's own.
func (m Meta) Next() Meta {
	return Meta{CorrelationID: m.CorrelationID, InvoiceID: m.InvoiceID, ContextNIP: m.ContextNIP}
}

// Common returns m itself; it lets every event type satisfy Event by
// embedding Meta.
func (m *Meta) Common() *Meta { return m }

// ObjectRef points at an object in S3-compatible storage.
type ObjectRef struct {
	Bucket string `msgpack:"bucket"`
	Key    string `msgpack:"key"`
	// SHA256 is the standard-base64 SHA-256 digest of the object's bytes.
	// Optional only in ERP-submitted references.
	SHA256      string `msgpack:"sha256,omitempty"`
	Size        int64  `msgpack:"size"`
	ContentType string `msgpack:"content_type,omitempty"`
}

// Session modes.
const (
	ModeOnline = "online"
	ModeBatch  = "batch"
)

// Visualization formats and languages.
const (
	FormatPDF  = "pdf"
	FormatHTML = "html"

	LangPL   = "pl"
	LangEN   = "en"
	LangPLEN = "pl_en"
)

// Query subject types: the role of the context NIP on the invoices sought.
const (
	SubjectSeller     = "subject1"          // issued by the context
	SubjectBuyer      = "subject2"          // received by the context
	SubjectThird      = "subject3"          // the context is a third party
	SubjectAuthorized = "subjectAuthorized" // the context is an authorised subject
)

// Rejection stages: where in the pipeline an invoice was rejected.
const (
	StageValidate = "validate" // the pipeline's own checks before sending
	StageSend     = "send"     // KSeF refused the send request
	StageStatus   = "status"   // KSeF processed the invoice and rejected it
)

// ErrorKind says why a message was dead-lettered.
type ErrorKind string

const (
	KindMalformed      ErrorKind = "malformed"       // not decodable msgpack
	KindUnknownVersion ErrorKind = "unknown_version" // "v" not supported
	KindInvalid        ErrorKind = "invalid"         // unknown type or bad field
	KindPermanent      ErrorKind = "permanent"       // handler said it can never succeed
	KindMaxDeliver     ErrorKind = "max_deliver"     // failure budget exhausted
	KindPanic          ErrorKind = "panic"           // budget exhausted, last failure a panic
	KindDeadline       ErrorKind = "deadline"        // no outcome before the invoice's deadline
)

// InvoiceSubmitted asks the pipeline to send an invoice to KSeF. Exactly
// one source is set: XML (already in storage), InlineXML (small invoices),
// or Generate (structured data the pipeline turns into FA(3) XML).
type InvoiceSubmitted struct {
	Meta `msgpack:",inline"`
	XML  *ObjectRef `msgpack:"xml,omitempty"`
	// InlineXML is the FA(3) document itself, at most Codec.MaxInlineSize.
	InlineXML []byte `msgpack:"inline_xml,omitempty"`
	// Generate is the JSON of a KSeF generate request
	// (ksefapi.KsefInvoiceGenerateRequest), at most Codec.MaxInlineSize.
	Generate []byte `msgpack:"generate,omitempty"`
	// Offline marks an invoice issued in offline mode (sent later, needs
	// the second QR code on the visualization).
	Offline bool `msgpack:"offline"`
	// Visualize asks for a PDF once KSeF accepts the invoice.
	Visualize bool `msgpack:"visualize"`
	// Resubmission counts how many times the pipeline itself sent this
	// invoice back to the sender because KSeF cancelled its processing
	// (status 405 or 550); 0 for the ERP's own submission.
	Resubmission int `msgpack:"resubmission,omitempty"`
}

// InvoiceSent records that KSeF took the invoice into a session; its
// processing status is not known yet.
type InvoiceSent struct {
	Meta `msgpack:",inline"`
	// KsefInvoiceID is the technical reference KSeF gave the invoice
	// within the session (invoiceReferenceNumber), not the KSeF number.
	KsefInvoiceID string `msgpack:"ksef_invoice_id"`
	SessionID     string `msgpack:"session_id"`
	Mode          string `msgpack:"mode"`
	// InvoiceHash is the standard-base64 SHA-256 of the XML sent.
	InvoiceHash string     `msgpack:"invoice_hash"`
	XML         *ObjectRef `msgpack:"xml"`
	SentAt      Time       `msgpack:"sent_at"`
	// InvoiceNumber is the seller's invoice number (FA(3) field P_2).
	InvoiceNumber string `msgpack:"invoice_number"`
	// Visualize carries the submission's request for a PDF.
	Visualize bool `msgpack:"visualize,omitempty"`
	// Warnings are what the sender's checks found that KSeF does not verify (totals that do not
	// add up, repeated line numbers, ...): the invoice was sent all the same.
	Warnings []string `msgpack:"warnings,omitempty"`
}

// InvoiceAccepted records that KSeF accepted the invoice and assigned it a
// KSeF number: the invoice legally exists from AcquisitionDate.
type InvoiceAccepted struct {
	Meta       `msgpack:",inline"`
	KsefNumber string `msgpack:"ksef_number"`
	// AcquisitionDate is when KSeF received the invoice (legally its
	// issue date in KSeF).
	AcquisitionDate Time `msgpack:"acquisition_date"`
	// PermanentStorageDate is when KSeF stored it permanently, if known.
	PermanentStorageDate Time       `msgpack:"permanent_storage_date,omitempty"`
	SessionID            string     `msgpack:"session_id"`
	InvoiceHash          string     `msgpack:"invoice_hash"`
	XML                  *ObjectRef `msgpack:"xml"`
	// DuplicateOfEarlierSend is true when KSeF answered 440 (duplicate) and
	// the hash matched an earlier send of our own: the invoice is in KSeF,
	// KsefNumber is the one from that earlier send.
	DuplicateOfEarlierSend bool `msgpack:"duplicate_of_earlier_send"`
	// UPO is usually absent: the UPO is issued per session and announced
	// by session.upo_stored.
	UPO *ObjectRef `msgpack:"upo,omitempty"`
	// Visualize carries the submission's request for a PDF.
	Visualize bool `msgpack:"visualize,omitempty"`
	// Warnings are invoice.sent's, copied.
	Warnings []string `msgpack:"warnings,omitempty"`
}

// InvoiceRejected records that the invoice will not be in KSeF as sent:
// the ERP must correct and resubmit it.
type InvoiceRejected struct {
	Meta `msgpack:",inline"`
	// Code is the KSeF status code (e.g. 430 validation, 440 duplicate,
	// 450 semantic error) or 0 when the pipeline itself rejected it.
	Code        int    `msgpack:"code"`
	Description string `msgpack:"description"`
	// Details are KSeF's (or the validator's) detailed messages.
	Details    []string          `msgpack:"details,omitempty"`
	Extensions map[string]string `msgpack:"extensions,omitempty"`
	// Stage is StageValidate, StageSend or StageStatus.
	Stage string `msgpack:"stage"`
	// OriginalKsefNumber is the KSeF number of the invoice this one
	// duplicates (code 440).
	OriginalKsefNumber string `msgpack:"original_ksef_number,omitempty"`
}

// InvoiceDownloaded records one invoice fetched from KSeF by a query and
// stored.
type InvoiceDownloaded struct {
	Meta        `msgpack:",inline"`
	QueryID     string     `msgpack:"query_id"`
	KsefNumber  string     `msgpack:"ksef_number"`
	SubjectType string     `msgpack:"subject_type"`
	XML         *ObjectRef `msgpack:"xml"`
	// PermanentStorageDate is the invoice's permanent storage date in KSeF
	// (the incremental query's high-water mark is built from it).
	PermanentStorageDate Time `msgpack:"permanent_storage_date,omitempty"`
}

// VisualizeRequested asks for an HTML or PDF rendering of an invoice. Either
// KsefNumber or the common InvoiceID must be set (it names the output).
type VisualizeRequested struct {
	Meta       `msgpack:",inline"`
	KsefNumber string     `msgpack:"ksef_number,omitempty"`
	XML        *ObjectRef `msgpack:"xml"`
	Format     string     `msgpack:"format"`
	Language   string     `msgpack:"language"`
	// Offline marks an offline invoice: the rendering says so, and its KOD I (the verification
	// QR code) is labelled OFFLINE while KsefNumber is empty.
	Offline bool `msgpack:"offline"`
}

// InvoiceVisualized records a stored rendering.
type InvoiceVisualized struct {
	Meta       `msgpack:",inline"`
	KsefNumber string     `msgpack:"ksef_number,omitempty"`
	Format     string     `msgpack:"format"`
	Language   string     `msgpack:"language"`
	Document   *ObjectRef `msgpack:"document"`
}

// SessionClosed records that a KSeF session was closed; KSeF will now issue
// its UPO.
type SessionClosed struct {
	Meta         `msgpack:",inline"`
	SessionID    string `msgpack:"session_id"`
	Mode         string `msgpack:"mode"`
	InvoiceCount int    `msgpack:"invoice_count"`
}

// SessionUpoStored records that the session's UPO (official receipt) is in
// storage; it covers the invoices listed in KsefNumbers.
type SessionUpoStored struct {
	Meta        `msgpack:",inline"`
	SessionID   string     `msgpack:"session_id"`
	UPO         *ObjectRef `msgpack:"upo"`
	KsefNumbers []string   `msgpack:"ksef_numbers"`
}

// QueryRequested asks the pipeline to download invoices of the context NIP
// from KSeF. From/To bound the date range (To zero: now). Incremental
// queries continue from the previous query's high-water mark.
type QueryRequested struct {
	Meta        `msgpack:",inline"`
	QueryID     string `msgpack:"query_id"`
	SubjectType string `msgpack:"subject_type"`
	From        Time   `msgpack:"from"`
	To          Time   `msgpack:"to,omitempty"`
	Incremental bool   `msgpack:"incremental"`
}

// QueryCompleted records the end of a query: Parts are the stored result
// packages; each invoice also got an invoice.downloaded event.
type QueryCompleted struct {
	Meta         `msgpack:",inline"`
	QueryID      string      `msgpack:"query_id"`
	InvoiceCount int         `msgpack:"invoice_count"`
	Parts        []ObjectRef `msgpack:"parts"`
	// TruncatedContinuations counts the follow-up queries issued because
	// KSeF truncated a result (too many invoices for one package).
	TruncatedContinuations int `msgpack:"truncated_continuations"`
	// HighWaterMark is the permanent storage date up to which all invoices
	// are now downloaded; the next incremental query starts there.
	HighWaterMark Time `msgpack:"high_water_mark,omitempty"`
}

// DeadLettered carries a message a worker gave up on, published on
// "dlq.<original subject without prefix>" (with the prefix in front).
// The common InvoiceID, ContextNIP and CorrelationID are copied from the
// original event when it could be decoded.
type DeadLettered struct {
	Meta            `msgpack:",inline"`
	OriginalSubject string              `msgpack:"original_subject"`
	OriginalData    []byte              `msgpack:"original_data"`
	OriginalHeaders map[string][]string `msgpack:"original_headers,omitempty"`
	// OriginalMsgID is the original Nats-Msg-Id header, if any.
	OriginalMsgID string `msgpack:"original_msg_id,omitempty"`
	// OriginalSeq is the original message's stream sequence number.
	OriginalSeq uint64 `msgpack:"original_seq,omitempty"`
	// Reason is the last error message (never contains secrets or payloads).
	Reason     string    `msgpack:"reason"`
	ErrorKind  ErrorKind `msgpack:"error_kind"`
	Deliveries int       `msgpack:"deliveries"`
	// Stage is the name of the worker that gave up.
	Stage         string `msgpack:"stage"`
	FirstFailedAt Time   `msgpack:"first_failed_at,omitempty"`
}

// BatchQueued is the sender's queue item for an invoice the context's online budget cannot carry:
// the invoice is valid, stored, and waits for a batch package. It is published on
// "batch.queued.<context_nip>" and read by the sender's batch assembler, so that a package can
// gather up to 10,000 invoices without a handler waiting for each. The common fields carry the
// submission's correlation id, invoice id and context. The XML never travels here.
type BatchQueued struct {
	Meta `msgpack:",inline"`
	// Source identifies the submission (the event id of the ERP's invoice.submitted) and
	// Resubmission the pipeline's resubmission count: an item whose invoice was submitted anew
	// since is stale.
	Source       string `msgpack:"source"`
	Resubmission int    `msgpack:"resubmission,omitempty"`
	// Requeue counts the times a package KSeF failed as a whole put the invoice back in the
	// queue (0 for the first queueing): each is an item of its own.
	Requeue int `msgpack:"requeue,omitempty"`
	// Offline: the invoice goes in a batch session opened with offline: true.
	Offline bool `msgpack:"offline,omitempty"`
	// XML is the stored invoice, InvoiceHash its SHA-256 and InvoiceNumber its P_2.
	XML           *ObjectRef `msgpack:"xml"`
	InvoiceHash   string     `msgpack:"invoice_hash"`
	InvoiceNumber string     `msgpack:"invoice_number"`
	// Visualize carries the submission's request for a PDF.
	Visualize bool `msgpack:"visualize,omitempty"`
}

func (*InvoiceSubmitted) EventType() string   { return TypeInvoiceSubmitted }
func (*InvoiceSent) EventType() string        { return TypeInvoiceSent }
func (*InvoiceAccepted) EventType() string    { return TypeInvoiceAccepted }
func (*InvoiceRejected) EventType() string    { return TypeInvoiceRejected }
func (*InvoiceDownloaded) EventType() string  { return TypeInvoiceDownloaded }
func (*VisualizeRequested) EventType() string { return TypeVisualizeRequested }
func (*InvoiceVisualized) EventType() string  { return TypeInvoiceVisualized }
func (*SessionClosed) EventType() string      { return TypeSessionClosed }
func (*SessionUpoStored) EventType() string   { return TypeSessionUpoStored }
func (*QueryRequested) EventType() string     { return TypeQueryRequested }
func (*QueryCompleted) EventType() string     { return TypeQueryCompleted }
func (*DeadLettered) EventType() string       { return TypeDeadLettered }
func (*BatchQueued) EventType() string        { return TypeBatchQueued }

// newEvent returns an empty event of type t, or nil.
func newEvent(t string) Event {
	switch t {
	case TypeInvoiceSubmitted:
		return new(InvoiceSubmitted)
	case TypeInvoiceSent:
		return new(InvoiceSent)
	case TypeInvoiceAccepted:
		return new(InvoiceAccepted)
	case TypeInvoiceRejected:
		return new(InvoiceRejected)
	case TypeInvoiceDownloaded:
		return new(InvoiceDownloaded)
	case TypeVisualizeRequested:
		return new(VisualizeRequested)
	case TypeInvoiceVisualized:
		return new(InvoiceVisualized)
	case TypeSessionClosed:
		return new(SessionClosed)
	case TypeSessionUpoStored:
		return new(SessionUpoStored)
	case TypeQueryRequested:
		return new(QueryRequested)
	case TypeQueryCompleted:
		return new(QueryCompleted)
	case TypeDeadLettered:
		return new(DeadLettered)
	case TypeBatchQueued:
		return new(BatchQueued)
	}
	return nil
}
