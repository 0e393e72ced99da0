package emulator

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// Hostile makes the emulator answer one context's calls of one operation with what the API
// never sends, after authentication and the request limits, Times times (0: every time).
//
// Answers to any operation: "html-502" (nginx's 502 page, not processed), "html-200" (an HTML
// page with status 200, not processed), "truncated-json" (processed; the first half of the
// answer), "wrong-content-type" (processed; the answer as text/plain), "huge" (200 with 50 MB
// of JSON, not processed).
//
// Result packages, with Op ksef.OpInvoiceQueryResult: the context's next queries get one part
// of one made-up invoice that is unsafe as Answer says: "zip-bomb" (entries declaring 40 MiB
// of zeros in a few KB), "zip-lying-size" (an entry expanding past its declared size),
// "zip-traversal" (../ in a name), "zip-absolute" (/tmp/...), "zip-nul-name", "zip-backslash",
// "zip-long-name" (300 bytes), "zip-duplicate-names", "zip-no-metadata",
// "zip-metadata-missing-fields" (no invoiceHash), "zip-listed-absent" (an indexed invoice
// missing), "zip-unlisted" (an XML the index does not list).
type Hostile struct {
	Context string // NIP
	Op      ksef.Operation
	Answer  string
	Times   int
}

// HostileAnswers and HostilePackages are the answers Hostile knows.
var (
	HostileAnswers  = []string{"html-502", "html-200", "truncated-json", "wrong-content-type", "huge"}
	HostilePackages = []string{"zip-bomb", "zip-lying-size", "zip-traversal", "zip-absolute", "zip-nul-name", "zip-backslash",
		"zip-long-name", "zip-duplicate-names", "zip-no-metadata", "zip-metadata-missing-fields", "zip-listed-absent", "zip-unlisted"}
)

func (h Hostile) check() error {
	switch {
	case !ksef.IsNIP(h.Context):
		return fmt.Errorf("hostile answer: context %q is not a NIP", h.Context)
	case !slices.Contains(ksef.Operations(), h.Op):
		return fmt.Errorf("hostile answer: unknown operation %q", h.Op)
	case h.Times < 0:
		return fmt.Errorf("hostile answer: times %d", h.Times)
	case slices.Contains(HostilePackages, h.Answer):
		if h.Op != ksef.OpInvoiceQueryResult {
			return fmt.Errorf("hostile answer %s: only for %s", h.Answer, ksef.OpInvoiceQueryResult)
		}
	case !slices.Contains(HostileAnswers, h.Answer):
		return fmt.Errorf("hostile answer %q: want one of %v or %v", h.Answer, HostileAnswers, HostilePackages)
	}
	return nil
}

// ParseHostile reads hostile answers written "NIP:operation:answer[:times]", comma separated.
func ParseHostile(s string) ([]Hostile, error) {
	var out []Hostile
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		f := strings.Split(item, ":")
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("hostile answer %q: want NIP:operation:answer[:times]", item)
		}
		h := Hostile{Context: f[0], Op: ksef.Operation(f[1]), Answer: f[2]}
		if len(f) == 4 {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, fmt.Errorf("hostile answer %q: times: %w", item, err)
			}
			h.Times = n
		}
		if err := h.check(); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// hostile returns the answer due to nip's call of op, counting it; packages says whether zip
// answers (true) or the others (false) are looked for.
func (f *faults) hostile(nip string, op ksef.Operation, packages bool) string {
	if len(f.cfg.Hostile) == 0 {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.cfg.Hostile {
		if h.Context != nip || h.Op != op || strings.HasPrefix(h.Answer, "zip-") != packages {
			continue
		}
		if h.Times > 0 && f.used[i] >= h.Times {
			continue
		}
		f.used[i]++
		return h.Answer
	}
	return ""
}

// HostileServed reports how many hostile answers (or packages) each Faults.Hostile entry gave.
func (e *Emulator) HostileServed() []int {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	return append([]int(nil), e.faults.used...)
}

const htmlPage200 = "<!DOCTYPE html><html><head><title>Przerwa techniczna</title></head><body><h1>Trwają prace serwisowe</h1></body></html>"

// serveHostile answers a call as the hostile answer h says; next processes the request when
// the answer is a damaged form of the real one.
func (e *Emulator) serveHostile(w http.ResponseWriter, r *http.Request, h string, next http.Handler) {
	switch h {
	case "html-502":
		e.writeServerError(w, "", 0)
	case "html-200":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, htmlPage200)
	case "huge":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat(`"x",`, 16<<10))
		io.WriteString(w, "[")
		for n := 0; n < 50<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client stopped reading
			}
		}
		io.WriteString(w, `"x"]`)
	default: // truncated-json, wrong-content-type
		rec := &bufferedWriter{header: make(http.Header)}
		next.ServeHTTP(rec, r)
		if h == "wrong-content-type" {
			rec.header.Set("Content-Type", "text/plain")
		} else {
			b := rec.body.Bytes()
			rec.body.Truncate(len(b) / 2)
		}
		rec.header.Del("Content-Length")
		rec.copyTo(w)
	}
}

// buildHostilePart writes q's one part: a made-up invoice of the query's owner in a ZIP that
// is unsafe as h says, encrypted with the query's key.
func (e *Emulator) buildHostilePart(q *query, dir, h string) error {
	number := ksef.NewNumber(q.owner, e.now(), 1)
	xml := []byte("<Faktura/>")
	type meta struct {
		KsefNumber  string `json:"ksefNumber,omitempty"`
		InvoiceHash string `json:"invoiceHash,omitempty"`
	}
	index := []meta{{KsefNumber: number, InvoiceHash: kcrypto.SHA256Base64(xml)}}
	name := number + ".xml"
	type entry struct {
		name     string
		data     []byte
		declared uint64 // the size the header claims, when not len(data)
	}
	entries := []entry{{name: name, data: xml}}
	switch h {
	case "zip-bomb":
		zeros := make([]byte, 1<<20)
		for i := range 40 {
			entries = append(entries, entry{name: strings.Repeat("z", i+1) + ".bin", data: zeros})
		}
	case "zip-lying-size":
		big := bytes.Repeat(xml, 1<<18)
		entries[0] = entry{name: name, data: big, declared: uint64(len(xml))}
	case "zip-traversal":
		entries[0].name = "../../" + name
	case "zip-absolute":
		entries[0].name = "/tmp/" + name
	case "zip-nul-name":
		entries[0].name = name + "\x00.txt"
	case "zip-backslash":
		entries[0].name = `..\` + name
	case "zip-long-name":
		entries = append(entries, entry{name: strings.Repeat("n", 296) + ".xml", data: xml})
	case "zip-duplicate-names":
		entries = append(entries, entries[0])
	case "zip-metadata-missing-fields":
		index[0].InvoiceHash = ""
	case "zip-listed-absent":
		index = append(index, meta{KsefNumber: ksef.NewNumber(q.owner, e.now(), 2), InvoiceHash: index[0].InvoiceHash})
	case "zip-unlisted":
		entries = append(entries, entry{name: ksef.NewNumber(q.owner, e.now(), 3) + ".xml", data: xml})
	}
	var plain bytes.Buffer
	zw := zip.NewWriter(&plain)
	for _, en := range entries {
		var c bytes.Buffer
		fw, _ := flate.NewWriter(&c, flate.BestCompression)
		fw.Write(en.data)
		fw.Close()
		size := uint64(len(en.data))
		if en.declared > 0 {
			size = en.declared
		}
		w, err := zw.CreateRaw(&zip.FileHeader{Name: en.name, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(en.data),
			CompressedSize64: uint64(c.Len()), UncompressedSize64: size})
		if err != nil {
			return err
		}
		w.Write(c.Bytes())
	}
	if h != "zip-no-metadata" {
		w, err := zw.Create("_metadata.json")
		if err != nil {
			return err
		}
		json.NewEncoder(w).Encode(map[string]any{"invoices": index})
	}
	if err := zw.Close(); err != nil {
		return err
	}
	enc, err := kcrypto.Encrypt(plain.Bytes(), q.key, q.iv)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "part-1.zip.aes")
	if err := os.WriteFile(path, enc, 0o600); err != nil {
		return err
	}
	q.parts, q.size, q.count = []queryPart{{number: "1", path: path, size: int64(len(enc))}}, int64(len(enc)), 1
	q.invoices = nil
	return nil
}
