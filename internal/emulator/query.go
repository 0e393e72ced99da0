package emulator

import (
	"archive/zip"
	"bufio"
	"cmp"
	"compress/flate"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// query is an invoice query: a snapshot of the matching invoices taken when it starts, and
// the encrypted ZIP parts built from it in the background.
type query struct {
	id      string
	owner   string
	ready   time.Time // the status answers 503 before
	expires time.Time
	key, iv []byte

	invoices  []*invoice // until built
	count     int
	truncated bool
	last      time.Time // permanent storage date of the last invoice

	built chan struct{} // closed when parts (or err) are set
	parts []queryPart
	size  int64
	err   error
}

type queryPart struct {
	number string
	path   string
	size   int64
}

// maxQueryRange is the longest PermanentStorage date range of one query.
const maxQueryRangeMonths = 3

// queryStatusWait bounds how long ksefInvoiceQueryStatus waits for parts still being built
// before answering 503 with Retry-After.
const queryStatusWait = 10 * time.Second

func (a *api) KsefInvoiceQueryStart(ctx context.Context, req ksefapi.KsefInvoiceQueryStartRequestObject) (ksefapi.KsefInvoiceQueryStartResponseObject, error) {
	e := a.e
	b := req.Body
	from, to := b.Range.From, b.Range.To
	switch {
	case from.IsZero() || to.IsZero():
		return nil, badRequest(ksef.CodeQueryParams, "Wymagane są range.from i range.to")
	case from.After(to):
		return nil, badRequest(ksef.CodeQueryParams, "range.from (%s) jest późniejsze niż range.to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.After(from.AddDate(0, maxQueryRangeMonths, 0)):
		return nil, badRequest(ksef.CodeQueryParams, "Zakres dat przekracza %d miesiące", maxQueryRangeMonths)
	case !b.SubjectType.Valid():
		return nil, badRequest(ksef.CodeQueryParams, "Nieznany subjectType %q", clip(string(b.SubjectType), 40))
	}
	key, iv, err := e.unwrapKey(b.EncryptionInfo, ksef.CodeQueryInit)
	if err != nil {
		return nil, err
	}
	nip := principalOf(ctx).nip
	now := e.now()
	e.sweepQueries(now)

	e.mu.Lock()
	var found []*invoice
	for _, inv := range e.byKsef {
		if inv.stored(now) && !inv.Stored.Before(from) && !inv.Stored.After(to) && matchesSubject(inv, b.SubjectType, nip) {
			found = append(found, inv)
		}
	}
	q := &query{
		id:      e.newRef("EX", now),
		owner:   nip,
		ready:   now.Add(e.cfg.QueryDelay),
		expires: now.Add(e.cfg.QueryResultTTL),
		key:     key,
		iv:      iv,
		built:   make(chan struct{}),
	}
	e.queries[q.id] = q
	e.mu.Unlock()

	slices.SortFunc(found, func(x, y *invoice) int {
		return cmp.Or(x.Stored.Compare(y.Stored), cmp.Compare(x.KsefNumber, y.KsefNumber))
	})
	if len(found) > e.cfg.QueryMaxInvoices {
		found, q.truncated = found[:e.cfg.QueryMaxInvoices], true
	}
	if len(found) > 0 {
		q.last = found[len(found)-1].Stored
	}
	q.invoices, q.count = found, len(found)
	e.stats.query()
	if !e.spawn(func() { e.buildQuery(q) }) {
		return nil, errf(http.StatusServiceUnavailable, ksef.CodeQueryInit, "Emulator kończy pracę")
	}
	return ksefapi.KsefInvoiceQueryStart200JSONResponse{QueryId: q.id}, nil
}

// matchesSubject reports whether the context plays the role on the invoice: subject1 seller,
// subject2 buyer (Podmiot2 NIP), subject3 a third party (Podmiot3 NIP), subjectAuthorized the
// authorized subject (PodmiotUpowazniony NIP).
func matchesSubject(inv *invoice, st ksefapi.SubjectType, nip string) bool {
	switch st {
	case ksefapi.Subject1:
		return inv.SellerNIP == nip
	case ksefapi.Subject2:
		return inv.BuyerNIP == nip
	case ksefapi.Subject3:
		return slices.Contains(inv.ThirdNIPs, nip)
	case ksefapi.SubjectAuthorized:
		return inv.Authorized != "" && inv.Authorized == nip
	}
	return false
}

// sweepQueries deletes expired results.
func (e *Emulator) sweepQueries(now time.Time) {
	e.mu.Lock()
	var gone []*query
	for id, q := range e.queries {
		if !now.Before(q.expires) {
			select {
			case <-q.built:
				gone = append(gone, q)
				delete(e.queries, id)
			default: // still building; swept next time
			}
		}
	}
	e.mu.Unlock()
	for _, q := range gone {
		for _, p := range q.parts {
			os.Remove(p.path)
		}
	}
}

// buildQuery writes the result parts: each a ZIP of <ksefNumber>.xml files and a
// _metadata.json index, encrypted with the query's key, streamed to disk. A new part starts
// when the next invoice would take the sum of XML sizes past QueryMaxPartSize.
func (e *Emulator) buildQuery(q *query) {
	defer close(q.built)
	dir := filepath.Join(e.tempDir, "queries", q.id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		q.err = err
		return
	}
	if h := e.faults.hostile(q.owner, ksef.OpInvoiceQueryResult, true); h != "" {
		e.stats.fault("hostile")
		q.err = e.buildHostilePart(q, dir, h)
		return
	}
	var (
		pw    *partWriter
		parts []queryPart
		total int64
	)
	finish := func() error {
		p, err := pw.close()
		if err != nil {
			return err
		}
		parts = append(parts, p)
		total += p.size
		pw = nil
		return nil
	}
	for _, inv := range q.invoices {
		if pw != nil && pw.bytes+inv.Size > e.cfg.QueryMaxPartSize {
			if q.err = finish(); q.err != nil {
				return
			}
		}
		if pw == nil {
			n := strconv.Itoa(len(parts) + 1)
			if pw, q.err = newPartWriter(filepath.Join(dir, "part-"+n+".zip.aes"), n, q.key, q.iv); q.err != nil {
				return
			}
		}
		if q.err = pw.add(inv, e.xmlPath(inv)); q.err != nil {
			pw.abort()
			return
		}
	}
	if pw != nil {
		if q.err = finish(); q.err != nil {
			return
		}
	}
	q.parts, q.size = parts, total
	q.invoices = nil
}

// partWriter builds one encrypted ZIP part: file <- AES-256-CBC <- ZIP.
type partWriter struct {
	number  string
	f       *os.File
	buf     *bufio.Writer
	enc     interface{ Close() error }
	zw      *zip.Writer
	meta    []invoiceMetadata
	bytes   int64
	copyBuf []byte
}

func newPartWriter(path, number string, key, iv []byte) (*partWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 64<<10)
	enc, err := kcrypto.EncryptWriter(buf, key, iv)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	zw := zip.NewWriter(enc)
	zw.RegisterCompressor(zip.Deflate, pooledDeflate)
	return &partWriter{number: number, f: f, buf: buf, enc: enc, zw: zw}, nil
}

// deflaters reuses compressors across the entries of parts: a flate.Writer is large to set up.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.DefaultCompression)
	return w
}}

func pooledDeflate(w io.Writer) (io.WriteCloser, error) {
	fw := deflaters.Get().(*flate.Writer)
	fw.Reset(w)
	return &pooledWriter{fw}, nil
}

type pooledWriter struct{ *flate.Writer }

func (p *pooledWriter) Close() error {
	err := p.Writer.Close()
	deflaters.Put(p.Writer)
	p.Writer = nil
	return err
}

// add streams the invoice's stored XML into the part.
func (p *partWriter) add(inv *invoice, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := p.zw.CreateHeader(&zip.FileHeader{Name: inv.KsefNumber + ".xml", Method: zip.Deflate, Modified: inv.Stored})
	if err != nil {
		return err
	}
	if p.copyBuf == nil {
		p.copyBuf = make([]byte, 32<<10)
	}
	// Only Read: *os.File's WriteTo would allocate a buffer of its own for every invoice.
	if _, err := io.CopyBuffer(w, struct{ io.Reader }{f}, p.copyBuf); err != nil {
		return err
	}
	p.bytes += inv.Size
	p.meta = append(p.meta, metadataOf(inv))
	return nil
}

func (p *partWriter) close() (queryPart, error) {
	w, err := p.zw.Create("_metadata.json")
	if err == nil {
		err = json.NewEncoder(w).Encode(metadataFile{Invoices: p.meta})
	}
	if err == nil {
		err = p.zw.Close()
	}
	if err == nil {
		err = p.enc.Close()
	}
	if err == nil {
		err = p.buf.Flush()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = p.f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p.f.Name())
		return queryPart{}, err
	}
	return queryPart{number: p.number, path: p.f.Name(), size: size}, nil
}

func (p *partWriter) abort() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// metadataFile is _metadata.json, shaped like the Ministry's export index: {"invoices": [...]}
// with InvoiceMetadata field names.
type metadataFile struct {
	Invoices []invoiceMetadata `json:"invoices"`
}

type invoiceMetadata struct {
	KsefNumber           string            `json:"ksefNumber"`
	InvoiceNumber        string            `json:"invoiceNumber"`
	IssueDate            string            `json:"issueDate"`
	AcquisitionDate      time.Time         `json:"acquisitionDate"`
	PermanentStorageDate time.Time         `json:"permanentStorageDate"`
	Seller               metadataSeller    `json:"seller"`
	Buyer                metadataBuyer     `json:"buyer"`
	ThirdSubjects        []metadataSubject `json:"thirdSubjects,omitempty"`
	AuthorizedSubject    *metadataSubject  `json:"authorizedSubject,omitempty"`
	GrossAmount          json.Number       `json:"grossAmount,omitempty"`
	Currency             string            `json:"currency"`
	InvoicingMode        string            `json:"invoicingMode"`
	InvoiceType          string            `json:"invoiceType"`
	FormCode             metadataFormCode  `json:"formCode"`
	HasAttachment        bool              `json:"hasAttachment"`
	InvoiceHash          string            `json:"invoiceHash"`
}

type metadataSeller struct {
	Nip  string `json:"nip"`
	Name string `json:"name,omitempty"`
}

type metadataBuyer struct {
	Identifier metadataIdentifier `json:"identifier"`
	Name       string             `json:"name,omitempty"`
}

type metadataIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value,omitempty"`
}

type metadataSubject struct {
	Identifier metadataIdentifier `json:"identifier"`
}

type metadataFormCode struct {
	SystemCode    string `json:"systemCode"`
	SchemaVersion string `json:"schemaVersion"`
	Value         string `json:"value"`
}

func metadataOf(inv *invoice) invoiceMetadata {
	m := invoiceMetadata{
		KsefNumber:           inv.KsefNumber,
		InvoiceNumber:        inv.Number,
		IssueDate:            inv.IssueDate,
		AcquisitionDate:      inv.Acquisition,
		PermanentStorageDate: inv.Stored,
		Seller:               metadataSeller{Nip: inv.SellerNIP, Name: inv.SellerName},
		Buyer:                metadataBuyer{Identifier: metadataIdentifier{Type: inv.BuyerIDType, Value: inv.BuyerID}, Name: inv.BuyerName},
		Currency:             inv.Currency,
		InvoicingMode:        "Online",
		InvoiceType:          inv.Type,
		FormCode:             metadataFormCode{SystemCode: fa3.KodSystemowy, SchemaVersion: fa3.WersjaSchemy, Value: fa3.KodFormularzaFA},
		HasAttachment:        inv.Attachment,
		InvoiceHash:          inv.Hash,
	}
	if inv.Offline {
		m.InvoicingMode = "Offline"
	}
	if _, err := strconv.ParseFloat(inv.Gross, 64); err == nil {
		m.GrossAmount = json.Number(inv.Gross)
	}
	for _, n := range inv.ThirdNIPs {
		m.ThirdSubjects = append(m.ThirdSubjects, metadataSubject{Identifier: metadataIdentifier{Type: "Nip", Value: n}})
	}
	if inv.Authorized != "" {
		m.AuthorizedSubject = &metadataSubject{Identifier: metadataIdentifier{Type: "Nip", Value: inv.Authorized}}
	}
	return m
}

// queryOf returns the caller's query once its result is ready, or the error to answer.
func (e *Emulator) queryOf(ctx context.Context, id string, code ksef.Code) (*query, *apiError) {
	now := e.now()
	e.mu.Lock()
	q := e.queries[id]
	e.mu.Unlock()
	switch {
	case q == nil || q.owner != principalOf(ctx).nip:
		return nil, notFound(code, "Nieznany identyfikator wyszukiwania %q", clip(id, 100))
	case !now.Before(q.expires):
		return nil, notFound(code, "Wynik wyszukiwania %s wygasł", id)
	case now.Before(q.ready):
		return nil, inProgress(code, q.ready.Sub(now))
	}
	t := time.NewTimer(queryStatusWait)
	defer t.Stop()
	select {
	case <-q.built:
	case <-t.C:
		return nil, inProgress(code, time.Second)
	case <-ctx.Done():
		return nil, inProgress(code, time.Second)
	}
	if q.err != nil {
		e.log.Error().Err(q.err).Str("query", id).Msg("building query parts")
		return nil, errf(http.StatusInternalServerError, code, "Nie udało się przygotować wyniku wyszukiwania")
	}
	return q, nil
}

func inProgress(code ksef.Code, wait time.Duration) *apiError {
	e := errf(http.StatusServiceUnavailable, code, "Wyszukiwanie w toku; spróbuj ponownie po %d s", retryAfterSeconds(wait))
	e.retryAfter = wait
	return e
}

func (a *api) KsefInvoiceQueryStatus(ctx context.Context, req ksefapi.KsefInvoiceQueryStatusRequestObject) (ksefapi.KsefInvoiceQueryStatusResponseObject, error) {
	q, err := a.e.queryOf(ctx, req.QueryId, ksef.CodeQueryStatus)
	if err != nil {
		return nil, err
	}
	resp := ksefapi.KsefInvoiceQueryStatus200JSONResponse{
		NumberOfInvoices: int32(q.count),
		PackageSize:      q.size,
		IsTruncated:      q.truncated,
		PartNumbers:      make([]string, 0, len(q.parts)),
	}
	for _, p := range q.parts {
		resp.PartNumbers = append(resp.PartNumbers, p.number)
	}
	if q.count > 0 {
		last := q.last
		resp.LastPermanentStorageDate = &last
	}
	return resp, nil
}

func (a *api) KsefInvoiceQueryResult(ctx context.Context, req ksefapi.KsefInvoiceQueryResultRequestObject) (ksefapi.KsefInvoiceQueryResultResponseObject, error) {
	q, err := a.e.queryOf(ctx, req.QueryId, ksef.CodeQueryResult)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(q.parts, func(p queryPart) bool { return p.number == req.PartNumber })
	if i < 0 {
		return nil, notFound(ksef.CodeQueryResult, "Nieznany numer części %q wyszukiwania %s", clip(req.PartNumber, 100), q.id)
	}
	f, oerr := os.Open(q.parts[i].path)
	if oerr != nil {
		return nil, errf(http.StatusInternalServerError, ksef.CodeQueryResult, "Nie udało się odczytać części %s", req.PartNumber)
	}
	return ksefapi.KsefInvoiceQueryResult200ApplicationzipResponse{Body: f, ContentLength: q.parts[i].size}, nil
}
