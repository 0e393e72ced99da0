// Package events is the public contract of the pipeline's event stream:
// the msgpack events that ERP systems publish and that the workers (sender,
// poller, downloader, visualizer) and audit consumers read from NATS
// JetStream. docs/events.md in the repository describes the same contract
// for readers in other languages.
//
// # Wire format
//
// Every event is one msgpack map with snake_case string keys (never the
// positional array form), so any msgpack library can read it into a
// generic map. Times are RFC 3339 strings in UTC with nine fractional
// digits ([TimeLayout]), not msgpack timestamp extensions; byte payloads
// (XML, JSON, dead-lettered data) are msgpack bin. Optional fields are
// left out when empty. Unknown fields are ignored, so a later release may
// add optional fields without changing the version.
//
// # Common fields ([Meta])
//
//	v               int     schema version, currently 1
//	type            string  event type, e.g. "invoice.submitted"
//	event_id        string  deterministic id, also the Nats-Msg-Id header (see MsgID)
//	correlation_id  string  shared by all events one ERP request causes
//	occurred_at     string  when the fact happened
//	invoice_id      string  the ERP's own invoice id (invoice events)
//	context_nip     string  10-digit NIP of the KSeF context
//
// # Events
//
// The type of an event is also its subject without prefix: with prefix
// "acme" an [InvoiceSubmitted] travels on "acme.invoice.submitted" (see
// [Subjects]).
//
//	invoice.submitted   InvoiceSubmitted    ERP -> sender: send this invoice
//	invoice.sent        InvoiceSent         sender: KSeF took it into a session
//	invoice.accepted    InvoiceAccepted     poller: KSeF number assigned
//	invoice.rejected    InvoiceRejected     sender/poller: will not be in KSeF
//	invoice.downloaded  InvoiceDownloaded   downloader: fetched by a query
//	invoice.visualize   VisualizeRequested  anyone -> visualizer: render it
//	invoice.visualized  InvoiceVisualized   visualizer: rendering stored
//	session.closed      SessionClosed       sender: session closed, UPO to come
//	session.upo_stored  SessionUpoStored    poller: UPO stored
//	query.requested     QueryRequested      ERP -> downloader: fetch invoices
//	query.completed     QueryCompleted      downloader: query finished
//	dlq.<subject>       DeadLettered        worker: gave up on a message
//	batch.queued.<nip>  BatchQueued         sender -> sender: invoice waits for a batch package
//
// Artifacts (XML, UPO, ZIP parts, PDFs) never travel in events except small
// submitted invoices (inline_xml, at most [DefaultMaxInlineSize] by
// default); events carry an [ObjectRef] to storage instead.
//
// # Decoding and errors
//
// [Decode] reads "type" and "v", decodes into the matching Go type and
// validates it. Every error it returns wraps [ErrInvalid]: [ErrMalformed]
// for bytes that are not an event-shaped msgpack map, [ErrUnknownType],
// [ErrUnknownVersion], or a [*FieldError] naming the missing or invalid
// field. A worker dead-letters such messages instead of retrying them.
//
// # Idempotence
//
// [MsgID] derives the event id from the type and the business key (for
// example "invoice.accepted:<context_nip>:<invoice_id>"), so publishing the
// same fact twice yields the same Nats-Msg-Id and JetStream keeps one copy
// within the stream's duplicate window. Consumers should still treat
// event_id as an idempotency key: a copy published after the window has
// passed is delivered again.
package events
