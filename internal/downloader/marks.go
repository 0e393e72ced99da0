package downloader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// CAS is a shared key-value store with compare-and-set (natsx.CAS over a JetStream KV bucket in
// production, ratelimit.MemStore in one process). Get of a missing key returns nil and revision
// 0; Swap writes only if the key is still at revision (0: absent) and reports whether it did.
type CAS interface {
	Get(ctx context.Context, key string) (value []byte, revision uint64, err error)
	Swap(ctx context.Context, key string, value []byte, revision uint64) (bool, error)
}

// Mark is the incremental sync state of one context and subject type.
type Mark struct {
	// HWM is the PermanentStorage date up to which every invoice is downloaded; the next
	// incremental window starts here.
	HWM time.Time `json:"hwm"`
	// Recent are the KSeF numbers already downloaded whose PermanentStorage date is at or after
	// HWM: the next window overlaps them, and skips them.
	Recent []string `json:"recent,omitempty"`
	// Last is the outcome of the query that moved the mark, so that a redelivered
	// query.requested publishes the same query.completed instead of downloading again.
	Last *Summary `json:"last,omitempty"`
}

// Summary is what a query.completed reports.
type Summary struct {
	QueryID       string             `json:"query_id"`
	InvoiceCount  int                `json:"invoice_count"`
	Parts         []events.ObjectRef `json:"parts,omitempty"`
	Continuations int                `json:"continuations"`
	HWM           time.Time          `json:"hwm,omitzero"`
}

// ErrMarkMoved is returned when another query moved the high-water mark meanwhile: the query is
// retried from the new mark.
var ErrMarkMoved = errors.New("downloader: the high-water mark moved during the query")

// marks reads and writes Marks in a CAS under "<nip>.<subject type>".
type marks struct{ cas CAS }

func markKey(nip, subject string) string { return nip + "." + subject }

// get returns the mark (zero when none) and its revision.
func (m marks) get(ctx context.Context, nip, subject string) (Mark, uint64, error) {
	raw, rev, err := m.cas.Get(ctx, markKey(nip, subject))
	if err != nil {
		return Mark{}, 0, fmt.Errorf("downloader: reading the high-water mark: %w", err)
	}
	var mk Mark
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &mk); err != nil {
			return Mark{}, 0, fmt.Errorf("downloader: high-water mark %s: %w", markKey(nip, subject), err)
		}
	}
	return mk, rev, nil
}

// maxMarkSize keeps a mark well inside a KV value (NATS' default max payload is 1 MiB).
const maxMarkSize = 256 << 10

// put writes mk if the mark is still at rev. A mark too large for the bucket drops the part
// list of its summary: a republished query.completed then lacks it (its event id is the same).
func (m marks) put(ctx context.Context, nip, subject string, mk Mark, rev uint64) error {
	raw, err := json.Marshal(mk)
	if err == nil && len(raw) > maxMarkSize && mk.Last != nil {
		last := *mk.Last
		last.Parts = nil
		mk.Last = &last
		raw, err = json.Marshal(mk)
	}
	if err != nil {
		return err
	}
	if len(raw) > maxMarkSize {
		return fmt.Errorf("downloader: high-water mark %s is %d bytes (%d recent invoices); lower the overlap", markKey(nip, subject), len(raw), len(mk.Recent))
	}
	ok, err := m.cas.Swap(ctx, markKey(nip, subject), raw, rev)
	if err != nil {
		return fmt.Errorf("downloader: writing the high-water mark: %w", err)
	}
	if !ok {
		return ErrMarkMoved
	}
	return nil
}
