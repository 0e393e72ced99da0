package downloader

import (
	"bytes"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// FuzzReadArchive feeds arbitrary bytes to the reader of decrypted query result parts (a ZIP of
// invoice XMLs and _metadata.json): it must never panic, and whatever it accepts must name each
// invoice by a valid KSeF number, at most once per index entry. Seeds are real packages as KSeF
// builds them (files named by KSeF number or listed by fileName, with and without an index).
func FuzzReadArchive(f *testing.F) {
	invs := makeInvoices(f, "5265877635", 3, day)
	for _, o := range []zipOptions{{}, {byFileName: true}, {noIndex: true}, {dropXML: 1}, {badHash: true}} {
		f.Add(buildZip(f, invs, o))
	}
	f.Add(buildZip(f, nil, zipOptions{}))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readArchive(bytes.NewReader(data), int64(len(data)), archiveLimits{maxInvoice: DefaultMaxInvoiceSize})
		if err != nil {
			if got != nil {
				t.Fatalf("an error (%v) with %d invoices", err, len(got))
			}
			return
		}
		files := map[string]bool{}
		for _, a := range got {
			if err := ksef.ValidateNumber(a.meta.KsefNumber); err != nil {
				t.Fatalf("accepted an invoice named %q: %v", a.meta.KsefNumber, err)
			}
			if a.file == nil {
				t.Fatal("an invoice without its file")
			}
			if files[a.file.Name] {
				t.Fatalf("file %q listed twice", a.file.Name)
			}
			files[a.file.Name] = true
		}
	})
}
