package downloader

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// MetadataName is the index KSeF puts in every result package (pobieranie-faktur: "_metadata.json",
// an object whose "invoices" array describes each invoice of the package).
const MetadataName = "_metadata.json"

// maxMetadataSize bounds the index read into memory: 10,000 entries of a few hundred bytes.
const maxMetadataSize = 64 << 20

// invoiceMeta is one entry of _metadata.json; fields the downloader does not use are ignored.
type invoiceMeta struct {
	KsefNumber           string    `json:"ksefNumber"`
	InvoiceNumber        string    `json:"invoiceNumber"`
	PermanentStorageDate time.Time `json:"permanentStorageDate"`
	InvoiceHash          string    `json:"invoiceHash"`
	Hash                 string    `json:"hash"` // older name of invoiceHash
	FileName             string    `json:"fileName"`
}

func (m *invoiceMeta) hash() string {
	if m.InvoiceHash != "" {
		return m.InvoiceHash
	}
	return m.Hash
}

// archived is one invoice XML in a result package.
type archived struct {
	file *zip.File
	meta invoiceMeta // KsefNumber is always set and valid
}

// readArchive lists the invoices of a decrypted result package. Each XML is matched to its
// _metadata.json entry by file name, else by KSeF number (the file is "<ksefNumber>.xml"). An
// index entry without its XML, or an XML that names no valid KSeF number, makes the package
// invalid: storing part of it would go unnoticed.
func readArchive(r io.ReaderAt, size int64) ([]archived, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("downloader: result part is not a ZIP: %w", err)
	}
	var index []invoiceMeta
	var xmls []*zip.File
	for _, f := range zr.File {
		name := path.Base(f.Name)
		switch {
		case f.FileInfo().IsDir():
		case name == MetadataName:
			if index != nil {
				return nil, fmt.Errorf("downloader: result part has two %s", MetadataName)
			}
			if index, err = readIndex(f); err != nil {
				return nil, err
			}
		case strings.EqualFold(path.Ext(name), ".xml"):
			xmls = append(xmls, f)
		}
	}
	byName := make(map[string]*invoiceMeta, len(index))
	byNumber := make(map[string]*invoiceMeta, len(index))
	for i := range index {
		m := &index[i]
		if m.FileName != "" {
			byName[path.Base(m.FileName)] = m
		}
		if m.KsefNumber != "" {
			byNumber[m.KsefNumber] = m
		}
	}
	out := make([]archived, 0, len(xmls))
	used := make(map[*invoiceMeta]bool, len(index))
	for _, f := range xmls {
		name := path.Base(f.Name)
		m := byName[name]
		if m == nil {
			m = byNumber[strings.TrimSuffix(name, path.Ext(name))]
		}
		a := archived{file: f}
		if m != nil {
			if used[m] {
				return nil, fmt.Errorf("downloader: result part: two files for KSeF number %s", m.KsefNumber)
			}
			used[m] = true
			a.meta = *m
		}
		if a.meta.KsefNumber == "" {
			a.meta.KsefNumber = strings.TrimSuffix(name, path.Ext(name))
		}
		if err := ksef.ValidateNumber(a.meta.KsefNumber); err != nil {
			return nil, fmt.Errorf("downloader: result part: file %q: %w", f.Name, err)
		}
		out = append(out, a)
	}
	if len(used) != len(index) {
		for i := range index {
			if !used[&index[i]] {
				return nil, fmt.Errorf("downloader: result part: %s lists %s but the part has no XML for it", MetadataName, index[i].KsefNumber)
			}
		}
	}
	return out, nil
}

func readIndex(f *zip.File) ([]invoiceMeta, error) {
	if f.UncompressedSize64 > maxMetadataSize {
		return nil, fmt.Errorf("downloader: %s is %d bytes, more than %d", MetadataName, f.UncompressedSize64, maxMetadataSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("downloader: %s: %w", MetadataName, err)
	}
	defer rc.Close()
	var doc struct {
		Invoices []invoiceMeta `json:"invoices"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, maxMetadataSize)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("downloader: %s: %w", MetadataName, err)
	}
	// Read to the end so that the ZIP's CRC is checked.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("downloader: %s: %w", MetadataName, err)
	}
	if doc.Invoices == nil {
		doc.Invoices = []invoiceMeta{}
	}
	return doc.Invoices, nil
}
