package downloader

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
)

// zipEntry is one entry of a hand-made package: data stored (or deflated), or raw with a
// declared size of its own.
type zipEntry struct {
	name     string
	data     []byte
	deflate  bool
	declared uint64 // when set, the size the header claims instead of len(data)
}

// hostileZip writes entries as given, then _metadata.json as index (skipped when nil).
func hostileZip(t testing.TB, entries []zipEntry, index any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		body := e.data
		method := zip.Store
		if e.deflate {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, flate.BestCompression)
			fw.Write(e.data)
			fw.Close()
			body, method = c.Bytes(), zip.Deflate
		}
		size := uint64(len(e.data))
		if e.declared > 0 {
			size = e.declared
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: method, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(len(body)), UncompressedSize64: size})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	return closeZip(t, zw, &buf, index)
}

type metaEntry struct {
	KsefNumber  string `json:"ksefNumber,omitempty"`
	InvoiceHash string `json:"invoiceHash,omitempty"`
	FileName    string `json:"fileName,omitempty"`
}

func indexOf(invs []testInvoice) map[string][]metaEntry {
	m := map[string][]metaEntry{"invoices": {}}
	for _, inv := range invs {
		m["invoices"] = append(m["invoices"], metaEntry{KsefNumber: inv.number, InvoiceHash: kcrypto.SHA256Base64(inv.xml)})
	}
	return m
}

// TestHostilePackages: result parts that decrypt and unzip but that no KSeF package looks like
// (ZIP bombs, entry names that climb out or hide, missing or incomplete metadata) are refused
// as unsafe, with a reason naming the defect, before any invoice of them is stored.
func TestHostilePackages(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 2, day)
	a, b := invs[0], invs[1]
	ok := []zipEntry{{name: a.number + ".xml", data: a.xml}, {name: b.number + ".xml", data: b.xml}}
	with := func(extra ...zipEntry) []zipEntry { return append(append([]zipEntry{}, ok...), extra...) }
	zeros := bytes.Repeat([]byte{0}, 1<<20)
	var bomb []zipEntry
	for i := range 40 {
		bomb = append(bomb, zipEntry{name: strings.Repeat("z", i+1) + ".bin", data: zeros, deflate: true})
	}
	tests := []struct {
		name    string
		zip     []byte
		mention string
	}{
		{"entry declaring 1 GiB", hostileZip(t, with(zipEntry{name: "big.xml", data: []byte("<a/>"), declared: 1 << 30}), indexOf(invs)), "declares 1073741824 bytes"},
		{"40 MiB of zeros in a few KB", hostileZip(t, with(bomb...), indexOf(invs)), "ZIP bomb"},
		{"declared sizes summing past 2^64", hostileZip(t, with(zipEntry{name: "a.bin", data: []byte("a"), declared: 100},
			zipEntry{name: "b.bin", data: []byte("b"), declared: 1<<64 - 50}), indexOf(invs)), "ZIP bomb"},
		{"index declaring 1 GiB", hostileZip(t, with(zipEntry{name: MetadataName, data: []byte("{}"), declared: 1 << 30}), nil), "_metadata.json declares"},
		{"../ traversal", hostileZip(t, with(zipEntry{name: "../../etc/x.xml", data: a.xml}), indexOf(invs)), "not a clean relative path"},
		{"traversal inside", hostileZip(t, with(zipEntry{name: "a/../../x.xml", data: a.xml}), indexOf(invs)), "not a clean relative path"},
		{"absolute path", hostileZip(t, with(zipEntry{name: "/tmp/x.xml", data: a.xml}), indexOf(invs)), "absolute"},
		{"drive letter", hostileZip(t, with(zipEntry{name: "C:/x.xml", data: a.xml}), indexOf(invs)), "absolute"},
		{"backslash", hostileZip(t, with(zipEntry{name: `..\x.xml`, data: a.xml}), indexOf(invs)), "backslash"},
		{"NUL", hostileZip(t, with(zipEntry{name: "x.xml\x00.txt", data: a.xml}), indexOf(invs)), "control character"},
		{"300-byte name", hostileZip(t, with(zipEntry{name: strings.Repeat("n", 296) + ".xml", data: a.xml}), indexOf(invs)), "300 bytes"},
		{"not UTF-8", hostileZip(t, with(zipEntry{name: "\xff\xfe.xml", data: a.xml}), indexOf(invs)), "not UTF-8"},
		{"duplicate name", hostileZip(t, with(ok[0]), indexOf(invs)), "two entries named"},
		{"same name in two folders", hostileZip(t, with(zipEntry{name: "d/" + a.number + ".xml", data: a.xml}), indexOf(invs)), "two entries named"},
		{"no _metadata.json", hostileZip(t, ok, nil), "no _metadata.json"},
		{"_metadata.json without invoices", hostileZip(t, ok, map[string]any{"other": 1}), "no invoices array"},
		{"_metadata.json not JSON", hostileZip(t, with(zipEntry{name: MetadataName, data: []byte("<html>")}), nil), "not the index"},
		{"entry without ksefNumber", hostileZip(t, ok, map[string]any{"invoices": []metaEntry{{InvoiceHash: "x"}}}), "ksefNumber"},
		{"entry without invoiceHash", hostileZip(t, ok, map[string]any{"invoices": []metaEntry{{KsefNumber: a.number}, {KsefNumber: b.number, InvoiceHash: "x"}}}), "no invoiceHash"},
		{"invoice listed twice", hostileZip(t, ok, map[string]any{"invoices": append(indexOf(invs)["invoices"], indexOf(invs)["invoices"][0])}), "twice"},
		{"listed but absent", hostileZip(t, ok[:1], indexOf(invs)), "has no XML for it"},
		{"XML not listed", hostileZip(t, ok, indexOf(invs[:1])), "is not in _metadata.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readArchive(bytes.NewReader(tt.zip), int64(len(tt.zip)), archiveLimits{maxInvoice: DefaultMaxInvoiceSize})
			if !errors.Is(err, errUnsafePackage) || got != nil {
				t.Fatalf("%d invoices, error %v; want an unsafe package", len(got), err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q, want one mentioning %q", err, tt.mention)
			}
		})
	}
	t.Run("the safe package of the same invoices", func(t *testing.T) {
		z := hostileZip(t, ok, indexOf(invs))
		got, err := readArchive(bytes.NewReader(z), int64(len(z)), archiveLimits{maxInvoice: DefaultMaxInvoiceSize})
		if err != nil || len(got) != 2 {
			t.Fatalf("%d invoices, %v; want 2", len(got), err)
		}
	})
}

// TestHostilePackageFailsTheQuery: an unsafe part ends the query at its first delivery with a
// *RequestError (a dead letter with the reason), an entry that expands past its declared size
// (the bomb only reading finds) included, and no invoice.downloaded is announced for it; a
// part larger than the packageSize the status gave is not read past it and is retried.
func TestHostilePackageFailsTheQuery(t *testing.T) {
	invs := makeInvoices(t, sellerNIP, 1, day)
	inv := invs[0]
	big := bytes.Repeat([]byte("<a/>"), 1<<20)
	tests := []struct {
		name    string
		setup   func(*fakeKSeF)
		unsafe  bool
		mention string
	}{
		{name: "traversal name", unsafe: true, mention: "not a clean relative path", setup: func(f *fakeKSeF) {
			f.build = func(invs []testInvoice) []byte {
				return hostileZip(t, []zipEntry{{name: "../" + inv.number + ".xml", data: inv.xml}}, indexOf(invs))
			}
		}},
		{name: "entry lying about its size", unsafe: true, mention: "expands past its declared", setup: func(f *fakeKSeF) {
			f.build = func(invs []testInvoice) []byte {
				return hostileZip(t, []zipEntry{{name: inv.number + ".xml", data: big, deflate: true, declared: 100}},
					map[string][]metaEntry{"invoices": {{KsefNumber: inv.number, InvoiceHash: "x"}}})
			}
		}},
		{name: "no metadata", unsafe: true, mention: "no _metadata.json", setup: func(f *fakeKSeF) {
			f.build = func(invs []testInvoice) []byte { return buildZip(t, invs, zipOptions{noIndex: true}) }
		}},
		{name: "part past packageSize", mention: "packageSize", setup: func(f *fakeKSeF) { f.pad = 4 << 20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _, err := firstDelivery(t, invs, tt.setup)
			var re *RequestError
			if got := errors.As(err, &re); got != tt.unsafe {
				t.Fatalf("error %v: a request error %v, want %v", err, got, tt.unsafe)
			}
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %v, want one mentioning %q", err, tt.mention)
			}
			if n := h.pub.count(events.TypeInvoiceDownloaded); n != 0 {
				t.Errorf("%d invoice.downloaded announced from a refused part", n)
			}
		})
	}
}

// TestPartOverMaxPartSize: a part larger than MaxPartSize (KSeF's parts are at most 50 MiB) is
// not read past it, even when the status's packageSize would allow it, and is retried.
func TestPartOverMaxPartSize(t *testing.T) {
	fake := newFake(t, makeInvoices(t, sellerNIP, 3, day), 4)
	_, d := newHarness(t, fake, Config{MaxPartSize: 64})
	_, err := d.Download(t.Context(), request("t1", events.SubjectBuyer, day, day.Add(24*time.Hour), false), nil)
	var re *RequestError
	if !errors.Is(err, errPartTooLarge) || errors.As(err, &re) {
		t.Fatalf("error %v, want a retryable part too large", err)
	}
}
