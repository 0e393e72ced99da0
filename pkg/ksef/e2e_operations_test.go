package ksef_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// accepted is an invoice KSeF took: what was sent and what came back.
type accepted struct {
	xml        []byte
	number     string // P_2
	buyer      string
	ksefNumber string
	invoiceID  string
}

// TestEveryOperation drives all 16 operations through the typed client, as an ERP would: tools,
// an interactive session, a batch session, downloads by KSeF number, and the buyer's query of
// what the seller sent. Steps share the invoices they produce.
func TestEveryOperation(t *testing.T) {
	// One invoice per query part, so that the query has several parts to download.
	h := startEmulator(t, func(c *emulator.Config) { c.QueryMaxPartSize = 1 })
	ctx := context.Background()
	seller := h.client(t, tokA)
	buyer := h.client(t, tokB)
	queryFrom := time.Now().Add(-time.Minute)
	var got []accepted // every invoice of A that KSeF accepted
	var generated []byte

	if len(ksef.Operations()) != 16 {
		t.Fatalf("ksef.Operations() lists %d operations, the API has 16", len(ksef.Operations()))
	}

	t.Run("PublicKey", func(t *testing.T) {
		// The public key needs no token.
		r, err := h.client(t, "").PublicKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r.Algorithm != ksefapi.RSA {
			t.Errorf("algorithm %q", r.Algorithm)
		}
		pub, err := kcrypto.ParsePublicKey(r.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(h.em.PublicKey()) {
			t.Error("the key served is not the emulator's")
		}
	})

	if !t.Run("GenerateInvoice", func(t *testing.T) {
		req := invoiceRequest(nipA, nipB, "FV/E2E/ONLINE/1")
		r, err := seller.GenerateInvoice(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		generated = []byte(r.InvoiceData)
		if r.InvoiceVersion != ksefapi.V3 || r.InvoiceSize != int64(len(generated)) || r.InvoiceHash != kcrypto.SHA256Base64(generated) {
			t.Errorf("version %s, size %d, hash %s for %d bytes", r.InvoiceVersion, r.InvoiceSize, r.InvoiceHash, len(generated))
		}
		inv, err := fa3.Parse(generated)
		if err != nil {
			t.Fatal(err)
		}
		if inv.InvoiceNumber() != req.InvoiceNumber || inv.SellerNIP() != nipA || inv.BuyerNIP() != nipB {
			t.Errorf("generated %s from %s to %s", inv.InvoiceNumber(), inv.SellerNIP(), inv.BuyerNIP())
		}
	}) {
		t.FailNow()
	}

	t.Run("ValidateInvoice", func(t *testing.T) {
		r, err := seller.ValidateInvoice(ctx, generated)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Valid || r.InvoiceVersion != ksefapi.V3 {
			t.Errorf("valid %v, version %s", r.Valid, r.InvoiceVersion)
		}
		canon, err := fa3.Parse(r.CanonicalForm)
		if err != nil {
			t.Fatalf("canonical form: %v", err)
		}
		if canon.InvoiceNumber() != "FV/E2E/ONLINE/1" {
			t.Errorf("canonical form holds invoice %q", canon.InvoiceNumber())
		}
	})

	t.Run("VisualizeInvoice", func(t *testing.T) {
		for _, tc := range []struct {
			format ksefapi.OutputFormat
			lang   ksefapi.OutputLanguage
			ctype  string
			check  func(body []byte) bool
		}{
			{ksefapi.Pdf, ksefapi.Pl, "application/pdf", func(b []byte) bool { return bytes.HasPrefix(b, []byte("%PDF")) }},
			{ksefapi.Pdf, ksefapi.En, "application/pdf", func(b []byte) bool { return bytes.HasPrefix(b, []byte("%PDF")) }},
			{ksefapi.Html, ksefapi.Pl, "text/html", func(b []byte) bool { return bytes.Contains(b, []byte("FV/E2E/ONLINE/1")) }},
			{ksefapi.Html, ksefapi.PlEn, "text/html", func(b []byte) bool { return bytes.Contains(b, []byte("FV/E2E/ONLINE/1")) }},
		} {
			t.Run(string(tc.format)+"-"+string(tc.lang), func(t *testing.T) {
				body, ctype, err := seller.VisualizeInvoice(ctx, ksefapi.KsefInvoiceVisualizeRequest{
					InvoiceData: string(generated), OutputFormat: tc.format, OutputLanguage: tc.lang,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer body.Close()
				b, err := io.ReadAll(body)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(ctype, tc.ctype) {
					t.Errorf("media type %q, want %s", ctype, tc.ctype)
				}
				if !tc.check(b) {
					t.Errorf("body (%d bytes) starts %q", len(b), b[:min(40, len(b))])
				}
			})
		}
	})

	if !t.Run("OnlineSession", func(t *testing.T) {
		s, err := seller.OpenSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.ID == "" || s.Created.IsZero() {
			t.Fatalf("session %q created %v", s.ID, s.Created)
		}
		info, err := seller.SessionStatus(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.SessionStatus != ksefapi.Active || info.Status.Code != 100 || info.Batch || info.InvoiceCount != 0 {
			t.Errorf("new session: %+v", info)
		}

		invoices := []accepted{
			{xml: generated, number: "FV/E2E/ONLINE/1", buyer: nipB},
			{xml: invoiceXML(t, nipA, nipB, "FV/E2E/ONLINE/2"), number: "FV/E2E/ONLINE/2", buyer: nipB},
			// Not B's: the buyer's query must not see it.
			{xml: invoiceXML(t, nipA, nipC, "FV/E2E/ONLINE/3"), number: "FV/E2E/ONLINE/3", buyer: nipC},
		}
		for i := range invoices {
			r, err := s.Send(ctx, invoices[i].xml)
			if err != nil {
				t.Fatalf("sending %s: %v", invoices[i].number, err)
			}
			if r.Id == "" {
				t.Fatalf("no invoice id for %s", invoices[i].number)
			}
			invoices[i].invoiceID = r.Id
		}
		for i := range invoices {
			inv := &invoices[i]
			st := awaitFinal(t, h, seller, inv.invoiceID)
			if st.Status.Code != int32(ksef.StatusAccepted) || st.InvoiceStatus != ksefapi.Accepted {
				t.Fatalf("%s: status %d %s (%s)", inv.number, st.Status.Code, st.InvoiceStatus, deref(st.Status.Details))
			}
			inv.ksefNumber = deref(st.KsefNumber)
			if err := ksef.ValidateNumber(inv.ksefNumber); err != nil || ksef.NumberNIP(inv.ksefNumber) != nipA {
				t.Errorf("%s: KSeF number %q: %v", inv.number, inv.ksefNumber, err)
			}
			if deref(st.InvoiceNumber) != inv.number || deref(st.InvoiceHash) != kcrypto.SHA256Base64(inv.xml) {
				t.Errorf("%s: status names invoice %q hash %q", inv.number, deref(st.InvoiceNumber), deref(st.InvoiceHash))
			}
			if deref(st.InvoiceId) != inv.invoiceID {
				t.Errorf("%s: status of invoice %q", inv.number, deref(st.InvoiceId))
			}
		}

		list, err := seller.SessionInvoices(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(invoices) {
			t.Fatalf("the session lists %d invoices, sent %d", len(list), len(invoices))
		}
		for i, li := range list {
			if deref(li.InvoiceId) != invoices[i].invoiceID || deref(li.KsefNumber) != invoices[i].ksefNumber || li.Ordinal != strconv.Itoa(i+1) {
				t.Errorf("entry %d: id %q number %q ordinal %q", i, deref(li.InvoiceId), deref(li.KsefNumber), li.Ordinal)
			}
		}

		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		info = awaitSession(t, h, seller, s.ID, func(code int32) bool { return code != 100 && code != 170 })
		if info.SessionStatus != ksefapi.Closed || info.Status.Code != 200 || info.SuccessfulInvoiceCount != 3 || info.FailedInvoiceCount != 0 {
			t.Errorf("closed session: %+v", info)
		}
		// Closing again is harmless: a client that lost the first answer retries.
		if ok, err := seller.CloseSession(ctx, s.ID); err != nil || !ok {
			t.Errorf("closing again: %v %v", ok, err)
		}
		if _, err := s.Send(ctx, generated); !errors.Is(err, ksef.ErrSessionForgotten) {
			t.Errorf("sending after Close: %v, want ErrSessionForgotten", err)
		}

		u := readUPO(t, seller, s.ID)
		if u.SessionRef != s.ID || u.ContextNIP != nipA {
			t.Errorf("UPO of session %q, context %q", u.SessionRef, u.ContextNIP)
		}
		checkUPO(t, u, invoices)
		for i := range invoices {
			st := awaitStored(t, h, seller, invoices[i].invoiceID)
			if !st.PermanentStorageDate.After(*st.AcquisitionDate) {
				t.Errorf("%s: stored %v, acquired %v", invoices[i].number, st.PermanentStorageDate, st.AcquisitionDate)
			}
		}
		got = append(got, invoices...)
	}) {
		t.FailNow()
	}

	if !t.Run("BatchSession", func(t *testing.T) {
		invoices := []accepted{
			{number: "FV/E2E/BATCH/1", buyer: nipB},
			{number: "FV/E2E/BATCH/2", buyer: nipB},
			{number: "FV/E2E/BATCH/3", buyer: nipB},
		}
		files := map[string][]byte{}
		var names []string
		for i := range invoices {
			invoices[i].xml = invoiceXML(t, nipA, nipB, invoices[i].number)
			name := strings.ReplaceAll(invoices[i].number, "/", "_") + ".xml"
			files[name] = invoices[i].xml
			names = append(names, name)
		}
		pkg := zipFiles(t, names, files)

		enc, key, err := seller.NewEncryption(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer key.Zero()
		// Two parts, each encrypted on its own with the session's key and IV.
		plain := [][]byte{pkg[:len(pkg)/2], pkg[len(pkg)/2:]}
		parts := make([][]byte, len(plain))
		bi := ksefapi.BatchInfo{BatchSize: int64(len(pkg)), BatchHash: kcrypto.SHA256Base64(pkg)}
		for i, p := range plain {
			if parts[i], err = kcrypto.Encrypt(p, key.Key, key.IV); err != nil {
				t.Fatal(err)
			}
			bi.BatchParts = append(bi.BatchParts, ksefapi.BatchPartInfo{
				Ordinal: int32(i + 1), PartSize: int64(len(parts[i])), PartHash: kcrypto.SHA256Base64(parts[i]),
			})
		}
		open, err := seller.OpenBatchSession(ctx, ksefapi.KsefSessionOpenBatchRequest{
			InvoiceVersion: ksefapi.V3, EncryptionInfo: enc, BatchInfo: bi,
		})
		if err != nil {
			t.Fatal(err)
		}
		if open.Id == "" || len(open.PartUploadRequests) != len(parts) {
			t.Fatalf("batch session %q with %d upload requests", open.Id, len(open.PartUploadRequests))
		}
		for _, u := range open.PartUploadRequests {
			p := parts[u.Ordinal-1]
			if err := seller.UploadBatchPart(ctx, u, bytes.NewReader(p), int64(len(p))); err != nil {
				t.Fatalf("part %d: %v", u.Ordinal, err)
			}
		}
		info, err := seller.SessionStatus(ctx, open.Id)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Batch || info.SessionStatus != ksefapi.Active {
			t.Errorf("open batch session: %+v", info)
		}
		if ok, err := seller.CloseSession(ctx, open.Id); err != nil || !ok {
			t.Fatalf("closing: %v %v", ok, err)
		}
		info = awaitSession(t, h, seller, open.Id, func(code int32) bool { return code != 100 && code != 150 })
		if info.Status.Code != 200 || info.InvoiceCount != 3 || info.SuccessfulInvoiceCount != 3 {
			t.Fatalf("processed batch: %+v (%s)", info, deref(info.Status.Details))
		}

		list, err := seller.SessionInvoices(ctx, open.Id)
		if err != nil {
			t.Fatal(err)
		}
		byNumber := map[string]ksefapi.InvoiceInfo{}
		for _, li := range list {
			byNumber[deref(li.InvoiceNumber)] = li
		}
		for i := range invoices {
			inv := &invoices[i]
			li, ok := byNumber[inv.number]
			if !ok {
				t.Fatalf("%s is not in the session: %v", inv.number, slices.Collect(maps.Keys(byNumber)))
			}
			if li.Status.Code != int32(ksef.StatusAccepted) || deref(li.InvoiceHash) != kcrypto.SHA256Base64(inv.xml) {
				t.Errorf("%s: status %d hash %q", inv.number, li.Status.Code, deref(li.InvoiceHash))
			}
			inv.ksefNumber, inv.invoiceID = deref(li.KsefNumber), deref(li.InvoiceId)
			if err := ksef.ValidateNumber(inv.ksefNumber); err != nil {
				t.Errorf("%s: %v", inv.number, err)
			}
		}
		u := readUPO(t, seller, open.Id)
		if u.SessionRef != open.Id {
			t.Errorf("UPO of session %q", u.SessionRef)
		}
		checkUPO(t, u, invoices)
		for i := range invoices {
			awaitStored(t, h, seller, invoices[i].invoiceID)
		}
		got = append(got, invoices...)
	}) {
		t.FailNow()
	}

	t.Run("GetInvoice", func(t *testing.T) {
		for _, inv := range got {
			// The seller, and the buyer, may download the invoice.
			for _, c := range []*ksef.Client{seller, h.client(t, map[string]string{nipB: tokB, nipC: tokC}[inv.buyer])} {
				body, ctype, err := c.GetInvoice(ctx, inv.ksefNumber)
				if err != nil {
					t.Fatalf("%s: %v", inv.number, err)
				}
				b, err := io.ReadAll(body)
				body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(ctype, "text/xml") {
					t.Errorf("%s: media type %q", inv.number, ctype)
				}
				if !bytes.Equal(b, inv.xml) {
					t.Errorf("%s: downloaded %d bytes differ from the %d sent", inv.number, len(b), len(inv.xml))
				}
			}
		}
	})

	t.Run("QueryBySubject2", func(t *testing.T) {
		want := map[string][]byte{} // B's invoices by KSeF number
		for _, inv := range got {
			if inv.buyer == nipB {
				want[inv.ksefNumber] = inv.xml
			}
		}
		downloaded := runQuery(t, buyer, queryFrom, ksefapi.Subject2, len(want))
		if len(downloaded) != len(want) {
			t.Errorf("downloaded %d invoices, want %d", len(downloaded), len(want))
		}
		for num, xml := range want {
			if !bytes.Equal(downloaded[num], xml) {
				t.Errorf("%s: downloaded %d bytes differ from the %d sent", num, len(downloaded[num]), len(xml))
			}
		}
		// As seller (subject1) B has nothing; A as seller sees all of its invoices.
		if n := len(runQuery(t, buyer, queryFrom, ksefapi.Subject1, 0)); n != 0 {
			t.Errorf("B as seller: %d invoices", n)
		}
		if n := len(runQuery(t, seller, queryFrom, ksefapi.Subject1, len(got))); n != len(got) {
			t.Errorf("A as seller: %d invoices, want %d", n, len(got))
		}
	})

	// Every operation has been answered 200 at least once.
	for _, op := range ksef.Operations() {
		if n := h.em.Requests(op, 200); n == 0 {
			t.Errorf("%s was never answered 200", op)
		}
	}
}

// checkUPO checks that the UPO lists exactly the accepted invoices.
func checkUPO(t *testing.T, u upo, invoices []accepted) {
	t.Helper()
	listed := map[string]string{}
	for _, d := range u.Documents {
		listed[d.KsefNumber] = d.Number
		if d.SellerNIP != nipA {
			t.Errorf("UPO: %s sold by %s", d.KsefNumber, d.SellerNIP)
		}
	}
	if len(u.Documents) != len(invoices) {
		t.Errorf("UPO lists %d documents, want %d", len(u.Documents), len(invoices))
	}
	for _, inv := range invoices {
		if n, ok := listed[inv.ksefNumber]; !ok || n != inv.number {
			t.Errorf("UPO: %s (%s) listed as %q, %v", inv.ksefNumber, inv.number, n, ok)
		}
	}
}

// runQuery runs a query of c's context in the given role from `from` to now, downloads and
// decrypts every part and returns the invoices by KSeF number, checking the parts' metadata.
func runQuery(t *testing.T, c *ksef.Client, from time.Time, subject ksefapi.SubjectType, wantCount int) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	enc, key, err := c.NewEncryption(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	id, err := c.StartQuery(ctx, ksefapi.KsefInvoiceQueryStartRequest{
		Range:          ksefapi.KsefInvoiceQueryStartRange{From: from, To: time.Now().Add(time.Minute)},
		EncryptionInfo: enc,
		SubjectType:    subject,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.QueryStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if int(st.NumberOfInvoices) != wantCount || st.IsTruncated {
		t.Fatalf("%s query: %d invoices (truncated %v), want %d", subject, st.NumberOfInvoices, st.IsTruncated, wantCount)
	}
	// Each part holds one invoice (QueryMaxPartSize 1).
	if len(st.PartNumbers) != wantCount {
		t.Errorf("%s query: %d parts for %d invoices", subject, len(st.PartNumbers), wantCount)
	}
	out := map[string][]byte{}
	var size int64
	for _, part := range st.PartNumbers {
		body, err := c.QueryResult(ctx, id, part)
		if err != nil {
			t.Fatalf("part %s: %v", part, err)
		}
		ct, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		size += int64(len(ct))
		plain, err := kcrypto.Decrypt(ct, key.Key, key.IV)
		if err != nil {
			t.Fatalf("part %s does not decrypt with the query's key: %v", part, err)
		}
		files := unzip(t, plain)
		var meta struct {
			Invoices []struct {
				KsefNumber string `json:"ksefNumber"`
				Seller     struct {
					Nip string `json:"nip"`
				} `json:"seller"`
				InvoiceHash string `json:"invoiceHash"`
			} `json:"invoices"`
		}
		if err := json.Unmarshal(files["_metadata.json"], &meta); err != nil {
			t.Fatalf("part %s: _metadata.json: %v", part, err)
		}
		delete(files, "_metadata.json")
		if len(meta.Invoices) != len(files) {
			t.Errorf("part %s: metadata of %d invoices for %d files", part, len(meta.Invoices), len(files))
		}
		for _, m := range meta.Invoices {
			xml, ok := files[m.KsefNumber+".xml"]
			if !ok {
				t.Errorf("part %s: metadata names %s, not in the part", part, m.KsefNumber)
				continue
			}
			if m.InvoiceHash != kcrypto.SHA256Base64(xml) || m.Seller.Nip != ksef.NumberNIP(m.KsefNumber) {
				t.Errorf("part %s: metadata of %s: %+v", part, m.KsefNumber, m)
			}
			if _, dup := out[m.KsefNumber]; dup {
				t.Errorf("%s is in two parts", m.KsefNumber)
			}
			out[m.KsefNumber] = xml
		}
	}
	if size != st.PackageSize {
		t.Errorf("parts add up to %d bytes, packageSize says %d", size, st.PackageSize)
	}
	return out
}

// TestConcurrentUse shares one client between goroutines that open sessions and send into them
// at once (run with -race): every invoice is accepted once, and the public key is fetched once.
func TestConcurrentUse(t *testing.T) {
	h := startEmulator(t, nil)
	ctx := context.Background()
	c := h.client(t, tokA)
	const sessions, perSession = 3, 4
	var (
		mu  sync.Mutex
		ids = map[string]string{} // invoice id -> P_2
	)
	xmls := map[string][]byte{} // made here: t.Fatal belongs to the test's goroutine
	for i := range sessions {
		for j := range perSession {
			number := fmt.Sprintf("FV/E2E/CONC/%d/%d", i, j)
			xmls[number] = invoiceXML(t, nipA, nipB, number)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, sessions*perSession)
	for i := range sessions {
		wg.Go(func() {
			s, err := c.OpenSession(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer s.Forget()
			var inner sync.WaitGroup
			for j := range perSession {
				inner.Go(func() {
					number := fmt.Sprintf("FV/E2E/CONC/%d/%d", i, j)
					r, err := s.Send(ctx, xmls[number])
					if err != nil {
						errs <- fmt.Errorf("%s: %w", number, err)
						return
					}
					mu.Lock()
					ids[r.Id] = number
					mu.Unlock()
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ids) != sessions*perSession {
		t.Fatalf("%d distinct invoice ids for %d sends", len(ids), sessions*perSession)
	}
	numbers := map[string]bool{}
	for id, number := range ids {
		st := awaitFinal(t, h, c, id)
		if st.Status.Code != int32(ksef.StatusAccepted) || deref(st.InvoiceNumber) != number {
			t.Errorf("%s: %d %q", number, st.Status.Code, deref(st.InvoiceNumber))
		}
		numbers[deref(st.KsefNumber)] = true
	}
	if len(numbers) != len(ids) {
		t.Errorf("%d KSeF numbers for %d invoices", len(numbers), len(ids))
	}
	if n := h.em.Requests(ksef.OpPublicKey, 200); n != 1 {
		t.Errorf("the public key was fetched %d times", n)
	}
}
