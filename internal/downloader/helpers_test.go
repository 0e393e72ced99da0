package downloader

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// testInvoice is an invoice as a test package holds it.
type testInvoice struct {
	number string
	xml    []byte
	psd    time.Time
}

func makeInvoices(t testing.TB, nip string, n int, day time.Time) []testInvoice {
	t.Helper()
	out := make([]testInvoice, n)
	for i := range out {
		num := ksef.NewNumber(nip, day, uint64(1000+i))
		out[i] = testInvoice{
			number: num,
			xml:    fmt.Appendf(nil, "<Faktura><Numer>%s</Numer><Pozycja>%d</Pozycja></Faktura>", num, i),
			psd:    day.Add(time.Duration(i) * time.Second),
		}
	}
	return out
}

type zipOptions struct {
	noIndex    bool // leave out _metadata.json
	byFileName bool // index entries carry fileName; files are not named by KSeF number
	dropXML    int  // leave out the XML of this many invoices (index still lists them)
	badHash    bool // index hashes do not match
}

// buildZip writes a result package the way KSeF documents it: one XML per invoice and a
// _metadata.json index.
func buildZip(t testing.TB, invs []testInvoice, o zipOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	type entry struct {
		KsefNumber           string    `json:"ksefNumber"`
		InvoiceNumber        string    `json:"invoiceNumber"`
		PermanentStorageDate time.Time `json:"permanentStorageDate"`
		InvoiceHash          string    `json:"invoiceHash"`
		FileName             string    `json:"fileName,omitempty"`
	}
	var index struct {
		Invoices []entry `json:"invoices"`
	}
	for i, inv := range invs {
		name := inv.number + ".xml"
		if o.byFileName {
			name = fmt.Sprintf("faktury/%04d.xml", i)
		}
		e := entry{KsefNumber: inv.number, InvoiceNumber: fmt.Sprintf("FV/%d", i), PermanentStorageDate: inv.psd, InvoiceHash: kcrypto.SHA256Base64(inv.xml)}
		if o.byFileName {
			e.FileName = name
		}
		if o.badHash {
			e.InvoiceHash = kcrypto.SHA256Base64([]byte("other"))
		}
		index.Invoices = append(index.Invoices, e)
		if i < o.dropXML {
			continue
		}
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(inv.xml)
	}
	var idx any
	if !o.noIndex {
		idx = index
	}
	return closeZip(t, zw, &buf, idx)
}

// closeZip adds index as _metadata.json (none when nil), closes zw and returns buf's bytes.
func closeZip(t testing.TB, zw *zip.Writer, buf *bytes.Buffer, index any) []byte {
	t.Helper()
	if index != nil {
		w, err := zw.Create(MetadataName)
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(w).Encode(index)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newKey(t testing.TB) *kcrypto.SessionKey {
	t.Helper()
	k, err := kcrypto.NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fixedKey(b byte) *kcrypto.SessionKey {
	return &kcrypto.SessionKey{Key: bytes.Repeat([]byte{b}, kcrypto.KeySize), IV: bytes.Repeat([]byte{b}, kcrypto.IVSize)}
}

func encrypt(t testing.TB, plain []byte, k *kcrypto.SessionKey) []byte {
	t.Helper()
	c, err := kcrypto.Encrypt(plain, k.Key, k.IV)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// errReader fails after n bytes.
type errReader struct {
	r   io.Reader
	n   int
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}
