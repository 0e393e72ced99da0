// Package invoicestate is the life of one submitted invoice, as every replica of the sender and
// the poller sees it: a record per invoice in a shared compare-and-set store (a JetStream KV
// bucket), its statuses, and the transitions allowed between them.
//
// One rule makes it safe under racing replicas, redeliveries and replays: every write is a
// compare-and-set on the revision this handler last read or wrote (Snapshot). When the record
// changed meanwhile the write fails with ErrChanged, which means "look again", never "overwrite":
// another handler has moved the invoice on, and what it did decides what comes next.
//
// The statuses and the transitions between them (Allowed):
//
//	from \ to        queued  sending    sending   sent  rejected  resend  batch_   failed
//	                         (online)   (batch)                           queued
//	(none)                     x                           x                  x
//	queued                     x                           x                  x        x
//	sending (online)    x      x                     x     x                  x        x
//	batch_queued                          x                                   x        x
//	sending (batch)                                  x                        x        x
//	sent                                                           x          x        x
//	resend                     x                           x                  x        x
//	rejected, failed    terminal
//
// sending (online) -> sending (online) is a send again once reconciliation showed KSeF never got
// the first; sent -> batch_queued is a package KSeF failed as a whole, before processing any of it.
//
// A different source (a corrected invoice under the same ERP id) starts a new life from any
// status (Restart); that is the only way out of rejected and failed.
//
//   - queued: known and valid, nothing sent (waiting for a request slot).
//   - sending, mode online: a send was started in SessionID. Until the send lease has passed its
//     outcome is unknown; after it, the session's invoice list says whether KSeF has it.
//   - batch_queued: waiting for a batch package (its batch.queued item was published); Packer is
//     set while an assembler holds it in a package not yet declared.
//   - sending, mode batch: in the package of batch session SessionID, declared to KSeF.
//   - sent: KSeF took it (InvoiceID, or the batch session); the poller follows it to its outcome.
//     A batch package KSeF failed as a whole puts it back (batch_queued) or fails it.
//   - resend: KSeF cancelled its processing (405, 500, 550); the poller submitted it again
//     (Resubmission counts).
//   - rejected: refused (by the pipeline or KSeF); invoice.rejected was published.
//   - failed: given up with a dead letter saying why (no outcome before its deadline, or a batch
//     package failing again and again); ksefctl status shows the record.
package invoicestate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Status of an invoice.
type Status string

const (
	Queued      Status = "queued"
	Sending     Status = "sending"
	Sent        Status = "sent"
	Rejected    Status = "rejected"
	Resend      Status = "resend"
	BatchQueued Status = "batch_queued"
	Failed      Status = "failed"
)

// Statuses lists every status.
func Statuses() []Status {
	return []Status{Queued, Sending, Sent, Rejected, Resend, BatchQueued, Failed}
}

// Terminal reports whether nothing more happens to the invoice (until a new submission).
func (s Status) Terminal() bool { return s == Rejected || s == Failed }

// State is what all replicas know about one invoice; it is what makes a redelivered
// invoice.submitted harmless.
type State struct {
	Status       Status `json:"status"`
	SourceDigest string `json:"source"` // identifies the submitted content
	Resubmission int    `json:"resubmission,omitempty"`
	InvoiceHash  string `json:"hash,omitempty"`
	SessionID    string `json:"session,omitempty"`
	Mode         string `json:"mode,omitempty"`
	InvoiceID    string `json:"invoiceId,omitempty"`
	// XML is where the invoice sent is stored and InvoiceNumber its P_2, so that a redelivery
	// can announce the send again without the submitted source.
	XML           *events.ObjectRef `json:"xml,omitempty"`
	InvoiceNumber string            `json:"invoiceNumber,omitempty"`
	// Packer is the batch assembler that took the invoice into a package (BatchQueued);
	// another leaves it alone until UpdatedAt + the batch lease.
	Packer string `json:"packer,omitempty"`
	// Attempt counts sends (online attempts and packages) of this submission.
	Attempt int `json:"attempt"`
	// Requeues counts the packages KSeF failed as a whole with the invoice in them.
	Requeues int `json:"requeues,omitempty"`
	// Offline: the invoice was issued in an offline mode (sent with offlineMode).
	Offline bool `json:"offline,omitempty"`
	// Visualize carries the submission's request for a PDF, for events published later.
	Visualize bool `json:"visualize,omitempty"`
	// Reason says why the invoice failed (Failed) or why it was put back (BatchQueued after a
	// package failed).
	Reason string `json:"reason,omitempty"`
	// Warnings are findings that do not stop the invoice (see the sender), kept for the events
	// published later.
	Warnings []string `json:"warnings,omitempty"`
	// SubmittedAt is when this submission was first seen: the deadlines count from it.
	SubmittedAt time.Time `json:"submittedAt,omitzero"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// mode is the status with the online/batch distinction the table makes.
func (s *State) mode() string {
	if s == nil {
		return ""
	}
	if s.Status == Sending {
		if s.Mode == events.ModeBatch {
			return "sending_batch"
		}
		return "sending_online"
	}
	return string(s.Status)
}

// allowed is the transition table of the package doc ("" is no record).
var allowed = map[string][]string{
	"":               {"sending_online", "rejected", "batch_queued"},
	"queued":         {"sending_online", "rejected", "batch_queued", "failed"},
	"sending_online": {"queued", "sending_online", "sent", "rejected", "batch_queued", "failed"},
	"batch_queued":   {"sending_batch", "batch_queued", "failed"},
	"sending_batch":  {"sent", "batch_queued", "failed"},
	"sent":           {"resend", "batch_queued", "failed"},
	"resend":         {"sending_online", "rejected", "batch_queued", "failed"},
	"rejected":       {},
	"failed":         {},
}

// Allowed reports whether an invoice may go from one state to the other within one submission.
func Allowed(from, to *State) bool {
	for _, m := range allowed[from.mode()] {
		if m == to.mode() {
			return true
		}
	}
	return false
}

// ErrChanged: the record is no longer at the revision the handler knew. Look again.
var ErrChanged = errors.New("invoicestate: the invoice's record changed meanwhile")

// TransitionError is a write the table does not allow.
type TransitionError struct{ From, To string }

func (e *TransitionError) Error() string {
	from := e.From
	if from == "" {
		from = "(none)"
	}
	return fmt.Sprintf("invoicestate: %s -> %s is not an allowed transition", from, e.To)
}

// CAS is a shared compare-and-set store (natsx.CAS over a JetStream KV bucket).
type CAS interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// SwapRevision writes value if key is still at revision (0: absent) and returns the revision
	// written (0: another writer got there first).
	SwapRevision(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// Store reads and writes invoice records.
type Store struct {
	cas CAS
	now func() time.Time
}

// NewStore returns a store over cas; now stamps UpdatedAt (nil: time.Now).
func NewStore(cas CAS, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{cas: cas, now: now}
}

// Snapshot is one invoice's record as a handler last read or wrote it. State is nil when there
// is no record. Writes go through the Store's transitions, which keep Rev.
type Snapshot struct {
	Key   string
	State *State
	Rev   uint64
}

// Key is the KV key of an invoice: its context and the ERP's id. KV keys allow only
// [-/_=.a-zA-Z0-9]; other characters of the ERP's id are hex-escaped.
func Key(nip, invoiceID string) string {
	b := []byte("inv." + nip + ".")
	for i := 0; i < len(invoiceID); i++ {
		c := invoiceID[i]
		if c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b = append(b, c)
		} else {
			b = fmt.Appendf(b, "=%02x", c)
		}
	}
	return string(b)
}

// Get reads an invoice's record.
func (s *Store) Get(ctx context.Context, key string) (*Snapshot, error) {
	raw, rev, err := s.cas.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading invoice state: %w", err)
	}
	snap := &Snapshot{Key: key, Rev: rev}
	if raw == nil {
		return snap, nil
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("invoice state %s: %w", key, err)
	}
	snap.State = &st
	return snap, nil
}

// write moves the record to next if the table allows it and the record is still at snap.Rev;
// snap then holds next and its revision.
func (s *Store) write(ctx context.Context, snap *Snapshot, next State) error {
	if !Allowed(snap.State, &next) {
		return &TransitionError{From: snap.State.mode(), To: next.mode()}
	}
	return s.put(ctx, snap, next)
}

func (s *Store) put(ctx context.Context, snap *Snapshot, next State) error {
	next.UpdatedAt = s.now()
	if next.SubmittedAt.IsZero() {
		// The deadlines count from the first write of a submission's life.
		if cur := snap.State; cur != nil && cur.SourceDigest == next.SourceDigest && cur.Resubmission == next.Resubmission {
			next.SubmittedAt = cur.SubmittedAt
		}
		if next.SubmittedAt.IsZero() {
			next.SubmittedAt = next.UpdatedAt
		}
	}
	raw, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	rev, err := s.cas.SwapRevision(ctx, snap.Key, raw, snap.Rev)
	if err != nil {
		return fmt.Errorf("writing invoice state: %w", err)
	}
	if rev == 0 {
		return ErrChanged
	}
	snap.State, snap.Rev = &next, rev
	return nil
}

// current is the record's state to build the next one from (zero when there is none).
func (snap *Snapshot) current() State {
	if snap.State == nil {
		return State{}
	}
	return *snap.State
}

// Restart begins a new life for a new submission (another source, or the pipeline's
// resubmission): base describes it, with Status Queued. It is allowed from any status.
func (s *Store) Restart(ctx context.Context, snap *Snapshot, base State) error {
	base.Status, base.SessionID, base.Mode, base.InvoiceID, base.Packer, base.Reason = Queued, "", "", "", "", ""
	if base.SubmittedAt.IsZero() {
		base.SubmittedAt = s.now()
	}
	return s.put(ctx, snap, base)
}

// StartOnline records that a send in interactive session sessionID begins; base is what the
// submission loaded (hash, XML, number) when there is no record yet or it came from another
// source.
func (s *Store) StartOnline(ctx context.Context, snap *Snapshot, base State, sessionID string) error {
	next := base
	next.Status, next.SessionID, next.Mode, next.Packer, next.InvoiceID = Sending, sessionID, events.ModeOnline, "", ""
	return s.write(ctx, snap, next)
}

// Unsent records that nothing of a started online send reached KSeF (a definite refusal, or no
// request slot): the next delivery need neither wait for the send lease nor reconcile.
func (s *Store) Unsent(ctx context.Context, snap *Snapshot) error {
	next := snap.current()
	next.Status, next.SessionID, next.Mode = Queued, "", ""
	return s.write(ctx, snap, next)
}

// MarkSent records that KSeF has the invoice (invoiceID: its technical id in the session).
func (s *Store) MarkSent(ctx context.Context, snap *Snapshot, invoiceID string) error {
	next := snap.current()
	next.Status, next.Packer, next.Reason = Sent, "", ""
	if invoiceID != "" {
		next.InvoiceID = invoiceID
	}
	return s.write(ctx, snap, next)
}

// MarkSentIn is MarkSent for a record whose send was found by reconciliation: st says what was
// sent and where (session, mode, hash, XML).
func (s *Store) MarkSentIn(ctx context.Context, snap *Snapshot, st State, invoiceID string) error {
	next := st
	next.Status, next.InvoiceID, next.Packer, next.Reason = Sent, invoiceID, "", ""
	return s.write(ctx, snap, next)
}

// Reject records that the invoice was refused and invoice.rejected published.
func (s *Store) Reject(ctx context.Context, snap *Snapshot, base State) error {
	next := base
	next.Status, next.Packer = Rejected, ""
	return s.write(ctx, snap, next)
}

// QueueForBatch records that the invoice waits for a batch package (base: what was loaded;
// reason: why it was put back, if it was). The attempt counter goes on.
func (s *Store) QueueForBatch(ctx context.Context, snap *Snapshot, base State, reason string) error {
	next := base
	next.Status, next.SessionID, next.Mode, next.Packer, next.InvoiceID, next.Reason = BatchQueued, "", "", "", "", reason
	return s.write(ctx, snap, next)
}

// Claim records that assembler packer took the invoice into a package being gathered.
func (s *Store) Claim(ctx context.Context, snap *Snapshot, packer string) error {
	next := snap.current()
	next.Status, next.SessionID, next.Mode, next.Packer = BatchQueued, "", "", packer
	return s.write(ctx, snap, next)
}

// Unclaim takes a claim back: the invoice waits for another package.
func (s *Store) Unclaim(ctx context.Context, snap *Snapshot) error {
	next := snap.current()
	next.Status, next.SessionID, next.Mode, next.Packer = BatchQueued, "", "", ""
	return s.write(ctx, snap, next)
}

// StartBatch records that the invoice is in the package of batch session sessionID, declared to
// KSeF; a new send attempt.
func (s *Store) StartBatch(ctx context.Context, snap *Snapshot, sessionID string) error {
	next := snap.current()
	next.Status, next.SessionID, next.Mode, next.Packer, next.Reason = Sending, sessionID, events.ModeBatch, "", ""
	next.Attempt++
	return s.write(ctx, snap, next)
}

// Resend records that KSeF cancelled the invoice's processing and it is submitted again as
// resubmission n.
func (s *Store) Resend(ctx context.Context, snap *Snapshot, n int) error {
	next := snap.current()
	next.Status, next.Resubmission = Resend, n
	return s.write(ctx, snap, next)
}

// Fail gives the invoice up with reason (a dead letter says it too).
func (s *Store) Fail(ctx context.Context, snap *Snapshot, reason string) error {
	next := snap.current()
	next.Status, next.Packer, next.Reason = Failed, "", reason
	return s.write(ctx, snap, next)
}

// State reads an invoice's record for a reader that writes nothing (nil: none).
func (s *Store) State(ctx context.Context, key string) (*State, error) {
	snap, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return snap.State, nil
}
