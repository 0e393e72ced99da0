package storage

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Layout decides where the pipeline's artifacts live. Identifiers that
// come from outside (invoice ids, query ids, ...) are path-escaped into one
// key segment, so "FV/2026/1" becomes "FV%2F2026%2F1". Dates are UTC.
//
//	InvoiceXML     <invoices>/<nip>/sent/2026/03/14/<invoice id>.xml
//	Downloaded     <invoices>/<nip>/downloaded/<ksef number>.xml
//	UPO            <upo>/<nip>/2026/03/14/<session id>.xml
//	QueryPart      <query-parts>/<nip>/<query id>/part-00001.zip
//	Visualization  <visualizations>/<nip>/<ksef number or invoice id>.<lang>.<format>
//
// Every key starts with the context NIP, so one tenant's objects can be
// listed, retained or removed by prefix.
type Layout struct{ Buckets Buckets }

// Location is a bucket and key.
type Location struct{ Bucket, Key string }

// Segment escapes an identifier into one key segment.
func Segment(id string) string {
	s := url.PathEscape(id)
	if strings.HasPrefix(s, ".") {
		s = "%2E" + s[1:] // never "." or ".."
	}
	return s
}

func day(t time.Time) string { return t.UTC().Format("2006/01/02") }

// InvoiceXML is where a submitted invoice's XML is kept.
func (l Layout) InvoiceXML(nip string, date time.Time, invoiceID string) Location {
	return Location{l.Buckets.Invoices, Segment(nip) + "/sent/" + day(date) + "/" + Segment(invoiceID) + ".xml"}
}

// Downloaded is where an invoice fetched from KSeF is kept.
func (l Layout) Downloaded(nip, ksefNumber string) Location {
	return Location{l.Buckets.Invoices, Segment(nip) + "/downloaded/" + Segment(ksefNumber) + ".xml"}
}

// UPO is where a session's UPO is kept.
func (l Layout) UPO(nip string, date time.Time, sessionID string) Location {
	return Location{l.Buckets.UPO, Segment(nip) + "/" + day(date) + "/" + Segment(sessionID) + ".xml"}
}

// QueryPart is where part number part (from 1) of a query result is kept.
func (l Layout) QueryPart(nip, queryID string, part int) Location {
	return Location{l.Buckets.QueryParts, fmt.Sprintf("%s/%s/part-%05d.zip", Segment(nip), Segment(queryID), part)}
}

// Visualization is where a rendering is kept; format is "pdf" or "html",
// lang "pl", "en" or "pl_en".
func (l Layout) Visualization(nip, ksefNumberOrInvoiceID, format, lang string) Location {
	return Location{l.Buckets.Visualizations,
		Segment(nip) + "/" + Segment(ksefNumberOrInvoiceID) + "." + Segment(lang) + "." + Segment(format)}
}
