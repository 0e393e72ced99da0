package downloader

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"

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

// errUnsafePackage marks a part that decrypted and unzipped but whose content no KSeF package
// has: entry names that climb out or hide (.., absolute, NUL, backslash, overlong, duplicate),
// sizes that expand far beyond the part (a ZIP bomb), a missing or incomplete _metadata.json.
// Fetching it again returns the same bytes, so the query fails with the reason instead of
// being retried.
var errUnsafePackage = errors.New("unsafe result package")

// archiveLimits bound what a part may expand to.
type archiveLimits struct {
	maxInvoice int64 // one XML, as declared in the ZIP (the reader refuses more than declared)
	// maxRatio bounds the sum of declared sizes to this multiple of the ZIP's size: XML
	// compresses about tenfold, a ZIP bomb a thousandfold per entry.
	maxRatio int64
}

// defaultMaxRatio leaves room for invoices that compress unusually well.
const defaultMaxRatio = 200

// maxEntryName bounds an entry's name: KSeF's are "<ksefNumber>.xml", about 40 bytes.
const maxEntryName = 255

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnsafePackage, fmt.Sprintf(format, args...))
}

// checkName refuses an entry name no KSeF package has and that a consumer unpacking the stored
// part could be fooled by.
func checkName(name string) error {
	switch {
	case name == "" || len(name) > maxEntryName:
		return unsafef("an entry name of %d bytes", len(name))
	case !utf8.ValidString(name):
		return unsafef("entry name %q is not UTF-8", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return unsafef("entry name %q has a control character or a backslash", name)
	case strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':'):
		return unsafef("entry name %q is absolute", name)
	}
	clean := strings.TrimSuffix(name, "/")
	if path.Clean(clean) != clean || clean == ".." || strings.HasPrefix(clean, "../") {
		return unsafef("entry name %q is not a clean relative path", name)
	}
	return nil
}

// readArchive lists the invoices of a decrypted result package. Each XML is matched to its
// _metadata.json entry by file name, else by KSeF number (the file is "<ksefNumber>.xml").
// Every package has _metadata.json (pobieranie-faktur: always, since 27.10.2025). An index
// entry without its XML or without a KSeF number or hash, an XML the index does not list, an
// unsafe entry name or declared sizes past lim make the package unsafe (errUnsafePackage):
// storing part of it would go unnoticed.
func readArchive(r io.ReaderAt, size int64, lim archiveLimits) ([]archived, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("downloader: result part is not a ZIP: %w", err)
	}
	if lim.maxRatio <= 0 {
		lim.maxRatio = defaultMaxRatio
	}
	var index []invoiceMeta
	var xmls []*zip.File
	names := make(map[string]bool, len(zr.File))
	var expanded uint64
	limit := uint64(max(size, 1) * lim.maxRatio)
	for _, f := range zr.File {
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		name := path.Base(f.Name)
		if f.FileInfo().IsDir() {
			continue
		}
		if names[name] {
			return nil, unsafef("two entries named %q", name)
		}
		names[name] = true
		switch isXML := strings.EqualFold(path.Ext(name), ".xml"); {
		case name == MetadataName && f.UncompressedSize64 > maxMetadataSize:
			return nil, unsafef("%s declares %d bytes, more than %d", MetadataName, f.UncompressedSize64, maxMetadataSize)
		case isXML && lim.maxInvoice > 0 && f.UncompressedSize64 > uint64(lim.maxInvoice):
			return nil, unsafef("entry %q declares %d bytes, more than the %d an invoice may have", f.Name, f.UncompressedSize64, lim.maxInvoice)
		}
		// expanded stays within limit, so the subtraction cannot wrap where a sum could.
		if f.UncompressedSize64 > limit-expanded {
			return nil, unsafef("entries declare more than %d times the part's %d bytes (a ZIP bomb)", lim.maxRatio, size)
		}
		expanded += f.UncompressedSize64
		switch {
		case name == MetadataName:
			if index, err = readIndex(f); err != nil {
				return nil, err
			}
		case strings.EqualFold(path.Ext(name), ".xml"):
			if !f.Mode().IsRegular() {
				return nil, unsafef("entry %q is not a regular file (%s)", f.Name, f.Mode())
			}
			xmls = append(xmls, f)
		}
	}
	if index == nil {
		return nil, unsafef("the part has no %s", MetadataName)
	}
	byName := make(map[string]*invoiceMeta, len(index))
	byNumber := make(map[string]*invoiceMeta, len(index))
	for i := range index {
		m := &index[i]
		if err := ksef.ValidateNumber(m.KsefNumber); err != nil {
			return nil, unsafef("%s entry %d: ksefNumber: %v", MetadataName, i+1, err)
		}
		if m.hash() == "" {
			return nil, unsafef("%s entry %d (%s) has no invoiceHash", MetadataName, i+1, m.KsefNumber)
		}
		if byNumber[m.KsefNumber] != nil {
			return nil, unsafef("%s lists %s twice", MetadataName, m.KsefNumber)
		}
		byNumber[m.KsefNumber] = m
		if m.FileName != "" {
			byName[path.Base(m.FileName)] = m
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
		if m == nil {
			return nil, unsafef("file %q is not in %s", f.Name, MetadataName)
		}
		if used[m] {
			return nil, unsafef("two files for KSeF number %s", m.KsefNumber)
		}
		used[m] = true
		out = append(out, archived{file: f, meta: *m})
	}
	if len(used) != len(index) {
		for i := range index {
			if !used[&index[i]] {
				return nil, unsafef("%s lists %s but the part has no XML for it", MetadataName, index[i].KsefNumber)
			}
		}
	}
	return out, nil
}

func readIndex(f *zip.File) ([]invoiceMeta, error) {
	if f.UncompressedSize64 > maxMetadataSize {
		return nil, unsafef("%s declares %d bytes, more than %d", MetadataName, f.UncompressedSize64, maxMetadataSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("downloader: %s: %w", MetadataName, err)
	}
	defer rc.Close()
	var doc struct {
		Invoices json.RawMessage `json:"invoices"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, maxMetadataSize)).Decode(&doc); err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, unsafef("%s expands past its declared size", MetadataName)
		}
		return nil, unsafef("%s is not the index: %v", MetadataName, err)
	}
	// Read to the end so that the ZIP's CRC is checked.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		if errors.Is(err, zip.ErrFormat) {
			return nil, unsafef("%s expands past its declared size", MetadataName)
		}
		return nil, fmt.Errorf("downloader: %s: %w", MetadataName, err)
	}
	if len(doc.Invoices) == 0 {
		return nil, unsafef("%s has no invoices array", MetadataName)
	}
	invs := []invoiceMeta{}
	if err := json.Unmarshal(doc.Invoices, &invs); err != nil {
		return nil, unsafef("%s: invoices: %v", MetadataName, err)
	}
	if invs == nil { // "invoices": null, an empty package
		invs = []invoiceMeta{}
	}
	return invs, nil
}
