package storage

import (
	"errors"
	"fmt"
	"strings"
)

// ERPOutboxPrefix is the first key segment of the objects an ERP uploads into the invoices
// bucket for the pipeline to read: <invoices>/erp-outbox/<nip>/<name>.
const ERPOutboxPrefix = "erp-outbox"

// ErrOutsideContext reports an object reference an event may not make: not in the invoices
// bucket, or not under its own context's keys there.
var ErrOutsideContext = errors.New("object reference outside the event's context")

// ERPOutbox is where an ERP puts an invoice it submits or asks to render by reference: the
// context first, so that the pipeline reads it only for that context.
func (l Layout) ERPOutbox(nip, name string) Location {
	return Location{l.Buckets.Invoices, ERPOutboxPrefix + "/" + Segment(nip) + "/" + Segment(name)}
}

// CheckInvoiceRef says whether an event of context nip may have the pipeline read bucket/key
// with its storage credentials: only in the invoices bucket, and only under the context's own
// keys there — <nip>/... (written by the pipeline: sent and downloaded invoices) or
// erp-outbox/<nip>/... (uploaded by the ERP). A key with an empty, "." or ".." segment is refused
// whatever its prefix, since a file system store would resolve it. The error wraps
// ErrOutsideContext and names the reference and the allowed prefixes.
func (l Layout) CheckInvoiceRef(nip, bucket, key string) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: %s/%s %s; an event of context %s may refer only to %s/%s/... or %s/%s/%s/...",
			ErrOutsideContext, bucket, key, why, nip, l.Buckets.Invoices, Segment(nip), l.Buckets.Invoices, ERPOutboxPrefix, Segment(nip))
	}
	if nip == "" {
		return refuse("names no context")
	}
	if bucket != l.Buckets.Invoices {
		return refuse("is not in the invoices bucket")
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Contains(seg, `\`) {
			return refuse("has an empty, '.', '..' or backslashed segment")
		}
	}
	own := Segment(nip) + "/"
	if !strings.HasPrefix(key, own) && !strings.HasPrefix(key, ERPOutboxPrefix+"/"+own) {
		return refuse("is not under the context's keys")
	}
	return nil
}
