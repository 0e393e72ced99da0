package emulator

import (
	"strconv"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// session is an interactive or batch session. Times drive its state lazily: nothing changes in
// the background except invoice and batch processing.
type session struct {
	ID       string    `json:"id"`
	Owner    string    `json:"owner"` // the context NIP
	TokenRef string    `json:"tokenRef"`
	Batch    bool      `json:"batch"`
	Offline  bool      `json:"offline,omitempty"`
	Created  time.Time `json:"created"`
	// Expires is the end of an interactive session's life, or of a batch session's upload window.
	Expires time.Time `json:"expires"`
	Closed  time.Time `json:"closed,omitzero"` // when ksefSessionClose was called

	InvoiceIDs []string `json:"-"` // rebuilt from the invoices on replay

	// Batch sessions: the declared package, the upload token and the outcome of processing.
	BatchInfo   *ksefapi.BatchInfo `json:"batchInfo,omitempty"`
	uploadToken string
	parts       map[int32]string // ordinal -> file of the uploaded encrypted part
	// BatchDone is set when the package has been processed; BatchStatus is a package-level
	// failure (405, 415, 420, 430, 435), zero when the invoices were processed.
	BatchDone   bool      `json:"batchDone,omitempty"`
	BatchStatus int       `json:"batchStatus,omitempty"`
	BatchDetail string    `json:"batchDetail,omitempty"`
	BatchEnded  time.Time `json:"batchEnded,omitzero"`
	// BatchDue, when set, is when a batch stuck by a fault shows its processing: before it the
	// session stays at 150 and lists no invoices.
	BatchDue time.Time `json:"batchDue,omitzero"`

	key, iv []byte // the session's AES key and IV; never persisted
}

// open reports whether the session still takes invoices or parts.
func (s *session) open(now time.Time) bool {
	return s.Closed.IsZero() && now.Before(s.Expires)
}

// closedAt is when the session stopped taking invoices (zero while open).
func (s *session) closedAt(now time.Time) time.Time {
	switch {
	case !s.Closed.IsZero():
		return s.Closed
	case !now.Before(s.Expires):
		return s.Expires
	}
	return time.Time{}
}

// invoice is one invoice sent in a session, from receipt to permanent storage.
type invoice struct {
	ID        string    `json:"id"`
	SessionID string    `json:"sessionId"`
	Ordinal   int       `json:"ordinal"`
	Owner     string    `json:"owner"`
	Received  time.Time `json:"received"`
	// Halfway (status 100 -> 150) and Due (the outcome shows) are fixed at receipt.
	Halfway time.Time `json:"halfway"`
	Due     time.Time `json:"due"`
	Offline bool      `json:"offline,omitempty"`

	// Set by processing. Done is when processing ended: the outcome shows at the later of Done
	// and Due.
	Processed  bool                          `json:"processed"`
	Done       time.Time                     `json:"done,omitzero"`
	Status     ksef.StatusCode               `json:"status"`
	Details    string                        `json:"details,omitempty"`
	Extensions []ksefapi.StatusInfoAttribute `json:"extensions,omitempty"`
	Hash       string                        `json:"hash"` // SHA-256 of the XML (declared, until decrypted)
	Size       int64                         `json:"size"`

	Number      string    `json:"number,omitempty"` // P_2
	Type        string    `json:"type,omitempty"`   // RodzajFaktury
	IssueDate   string    `json:"issueDate,omitempty"`
	SellerNIP   string    `json:"sellerNip,omitempty"`
	SellerName  string    `json:"sellerName,omitempty"`
	BuyerNIP    string    `json:"buyerNip,omitempty"`
	BuyerID     string    `json:"buyerId,omitempty"` // the buyer's identifier when not a NIP
	BuyerIDType string    `json:"buyerIdType,omitempty"`
	BuyerName   string    `json:"buyerName,omitempty"`
	ThirdNIPs   []string  `json:"thirdNips,omitempty"`
	Authorized  string    `json:"authorizedNip,omitempty"`
	Currency    string    `json:"currency,omitempty"`
	Gross       string    `json:"gross,omitempty"`
	Attachment  bool      `json:"attachment,omitempty"`
	KsefNumber  string    `json:"ksefNumber,omitempty"`
	Acquisition time.Time `json:"acquisition,omitzero"`
	Stored      time.Time `json:"stored,omitzero"` // permanent storage

	cancel ksef.StatusCode // drawn at receipt: the status that replaces acceptance, 0 none
}

// final reports whether the outcome shows at now.
func (inv *invoice) final(now time.Time) bool {
	return inv.Processed && !now.Before(inv.Due)
}

// accepted reports whether the invoice shows as accepted at now.
func (inv *invoice) accepted(now time.Time) bool {
	return inv.final(now) && inv.Status == ksef.StatusAccepted
}

// stored reports whether the invoice is permanently stored at now (visible to get and queries).
func (inv *invoice) stored(now time.Time) bool {
	return inv.accepted(now) && !now.Before(inv.Stored)
}

// info renders the invoice's status as the API shows it at now.
func (inv *invoice) info(now time.Time) ksefapi.InvoiceInfo {
	id := inv.ID
	out := ksefapi.InvoiceInfo{
		InvoiceId: &id,
		Ordinal:   strconv.Itoa(inv.Ordinal),
	}
	if inv.Hash != "" {
		h := inv.Hash
		out.InvoiceHash = &h
	}
	if !inv.final(now) {
		code := ksef.StatusReceived
		if !now.Before(inv.Halfway) {
			code = ksef.StatusProcessing
		}
		out.InvoiceStatus = ksefapi.Processing
		out.Status = ksefapi.StatusInfo{Code: int32(code), Description: code.Description()}
		return out
	}
	if inv.Number != "" {
		n := inv.Number
		out.InvoiceNumber = &n
	}
	out.Status = ksefapi.StatusInfo{Code: int32(inv.Status), Description: inv.Status.Description()}
	if inv.Details != "" {
		d := inv.Details
		out.Status.Details = &d
	}
	if len(inv.Extensions) > 0 {
		ext := append([]ksefapi.StatusInfoAttribute(nil), inv.Extensions...)
		out.Status.Extensions = &ext
	}
	if inv.Status != ksef.StatusAccepted {
		out.InvoiceStatus = ksefapi.Rejected
		return out
	}
	out.InvoiceStatus = ksefapi.Accepted
	k, acq := inv.KsefNumber, inv.Acquisition
	out.KsefNumber, out.AcquisitionDate = &k, &acq
	if !now.Before(inv.Stored) {
		st := inv.Stored
		out.PermanentStorageDate = &st
	}
	return out
}
