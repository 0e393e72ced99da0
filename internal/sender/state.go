package sender

import (
	"context"

	"encoding/json"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// Status of an invoice in the sender's shared state.
type Status string

const (
	// StatusQueued: known, not sent yet (waiting for the request limit).
	StatusQueued Status = "queued"
	// StatusSending: a send was started; if the record is found in this state, the outcome of
	// that send is unknown and must be reconciled with KSeF before sending again.
	StatusSending Status = "sending"
	// StatusSent: KSeF took the invoice; InvoiceID is its technical id.
	StatusSent Status = "sent"
	// StatusRejected: the pipeline or KSeF refused the invoice at send time.
	StatusRejected Status = "rejected"
	// StatusResend: the poller asked for the invoice to be sent again (405, 550).
	StatusResend Status = "resend"
	// StatusBatchQueued: valid and stored, waiting for a batch package (its batch.queued item
	// was published). Packer is set while an assembler has it in a package not yet declared.
	StatusBatchQueued Status = "batch_queued"
)

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
	// Warnings are what the checks KSeF does not make found, announced on invoice.sent by
	// whichever path sends it (online or batch).
	Warnings []string `json:"warnings,omitempty"`
	// Offline: the ERP issued the invoice in an offline mode (invoice.submitted's offline); it
	// goes to KSeF in a batch package, the only session the seed's API can open as offline.
	Offline bool `json:"offline,omitempty"`
	// Packer is the batch assembler that took the invoice into a package (StatusBatchQueued);
	// another leaves it alone until UpdatedAt + BatchConfig.Lease.
	Packer    string    `json:"packer,omitempty"`
	Attempt   int       `json:"attempt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// CAS is a shared compare-and-set store (natsx.CAS over a JetStream KV bucket).
type CAS interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Swap(ctx context.Context, key string, value []byte, revision uint64) (bool, error)
	// SwapRevision is Swap that returns the revision written (0: another writer got there first).
	SwapRevision(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
}

// States reads and writes invoice states.
type States struct{ cas CAS }

// NewStates returns a state store over cas.
func NewStates(cas CAS) *States { return &States{cas: cas} }

// StateKey is the KV key of an invoice: its context and the ERP's id. KV keys allow only
// [-/_=.a-zA-Z0-9]; other characters of the ERP's id are hex-escaped.
func StateKey(nip, invoiceID string) string {
	const ok = "-_=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := []byte("inv." + nip + ".")
	for i := 0; i < len(invoiceID); i++ {
		c := invoiceID[i]
		if c != '=' && indexByte(ok, c) >= 0 {
			b = append(b, c)
		} else {
			b = fmt.Appendf(b, "=%02x", c)
		}
	}
	return string(b)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// Get returns the state and its revision; nil and 0 when there is none.
func (s *States) Get(ctx context.Context, key string) (*State, uint64, error) {
	raw, rev, err := s.cas.Get(ctx, key)
	if err != nil || raw == nil {
		return nil, rev, err
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, 0, fmt.Errorf("invoice state %s: %w", key, err)
	}
	return &st, rev, nil
}

// Put writes st if the record is still at rev (0: absent); false means another replica got
// there first.
func (s *States) Put(ctx context.Context, key string, st *State, rev uint64) (bool, error) {
	written, err := s.Write(ctx, key, st, rev)
	return written != 0, err
}

// Write is Put that returns the revision it wrote (0: another replica got there first), for a
// writer that writes the record again without reading it back.
func (s *States) Write(ctx context.Context, key string, st *State, rev uint64) (uint64, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	return s.cas.SwapRevision(ctx, key, raw, rev)
}
