package emulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func TestPublicKeyNeedsNoToken(t *testing.T) {
	v := newEnv(t, nil)
	resp, err := v.client("").KsefPublicKeyWithResponse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON200 == nil {
		t.Fatalf("HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	if resp.JSON200.Algorithm != ksefapi.RSA {
		t.Errorf("algorithm %q", resp.JSON200.Algorithm)
	}
	pub, err := kcrypto.ParsePublicKey(resp.JSON200.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(v.e.PublicKey()) {
		t.Error("the published key is not the emulator's")
	}
}

func TestOnlineSessionLifecycle(t *testing.T) {
	v := newEnv(t, nil)
	s := v.open(tokA)
	xml := readSample(t, "valid", sample)

	if got := s.info(); got.SessionStatus != ksefapi.Active || got.Status.Code != 100 || got.Batch {
		t.Fatalf("new session: %+v", got)
	}
	id := s.send(xml)

	// Before the processing delay the invoice is received (100), then processing (150).
	if st := s.status(id); st.InvoiceStatus != ksefapi.Processing || st.Status.Code != int32(ksef.StatusReceived) {
		t.Fatalf("right after sending: %+v", st)
	}
	ctx := context.Background()
	if err := v.e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(testDelay / 2)
	if st := s.status(id); st.InvoiceStatus != ksefapi.Processing || st.Status.Code != int32(ksef.StatusProcessing) {
		t.Fatalf("halfway: %+v", st)
	}
	s.close()
	if got := s.info(); got.SessionStatus != ksefapi.Closed || got.Status.Code != 170 {
		t.Fatalf("closed with an invoice in processing: %+v", got)
	}
	// The UPO waits for every invoice.
	upo, err := s.c.KsefSessionUpoWithResponse(ctx, s.id)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, http.StatusBadRequest, upo.Body, upo.StatusCode(), ksef.CodeSessionNoUPO)

	v.clock.Advance(testDelay / 2)
	st := s.status(id)
	if st.InvoiceStatus != ksefapi.Accepted || st.Status.Code != 200 {
		t.Fatalf("after the delay: %+v", st)
	}
	if st.KsefNumber == nil || ksef.ValidateNumber(*st.KsefNumber) != nil {
		t.Fatalf("KSeF number %v", st.KsefNumber)
	}
	if !strings.HasPrefix(*st.KsefNumber, nipA+"-20260302-") {
		t.Errorf("KSeF number %s does not carry the seller NIP and the acquisition date", *st.KsefNumber)
	}
	if st.InvoiceNumber == nil || *st.InvoiceNumber != "llcdpk88gk-2025-06-24" {
		t.Errorf("invoice number %v", st.InvoiceNumber)
	}
	if st.InvoiceHash == nil || *st.InvoiceHash != kcrypto.SHA256Base64(xml) {
		t.Errorf("hash %v", st.InvoiceHash)
	}
	if st.AcquisitionDate == nil || st.Ordinal != "1" || st.InvoiceId == nil || *st.InvoiceId != id {
		t.Errorf("status %+v", st)
	}
	if st.PermanentStorageDate != nil {
		t.Errorf("permanently stored before the storage delay: %v", st.PermanentStorageDate)
	}

	// Right after acceptance the invoice is not yet available for download (api#96).
	get, err := v.client(tokA).KsefInvoiceGetWithResponse(ctx, *st.KsefNumber)
	if err != nil {
		t.Fatal(err)
	}
	e := wantError(t, http.StatusNotFound, get.Body, get.StatusCode(), ksef.CodeInvoiceUnknown)
	if !strings.Contains(details(e), "nie jest jeszcze dostępna") {
		t.Errorf("details %q", details(e))
	}
	v.clock.Advance(testStorage)
	st = s.status(id)
	if st.PermanentStorageDate == nil || !st.PermanentStorageDate.After(*st.AcquisitionDate) {
		t.Fatalf("permanent storage %v after acquisition %v", st.PermanentStorageDate, st.AcquisitionDate)
	}
	for _, tok := range []string{tokA, tokB, tokC} { // seller, buyer, third party
		get, err = v.client(tok).KsefInvoiceGetWithResponse(ctx, *st.KsefNumber)
		if err != nil {
			t.Fatal(err)
		}
		if get.StatusCode() != http.StatusOK || !bytes.Equal(get.Body, xml) {
			t.Errorf("%s: get invoice: HTTP %d", tok, get.StatusCode())
		}
		if ct := get.HTTPResponse.Header.Get("Content-Type"); ct != "text/xml" {
			t.Errorf("content type %q", ct)
		}
	}
	get, _ = v.client(tokX).KsefInvoiceGetWithResponse(ctx, *st.KsefNumber)
	wantError(t, http.StatusNotFound, get.Body, get.StatusCode(), ksef.CodeInvoiceUnknown)

	info := s.info()
	if info.Status.Code != 200 || info.InvoiceCount != 1 || info.SuccessfulInvoiceCount != 1 || info.FailedInvoiceCount != 0 {
		t.Fatalf("processed session: %+v", info)
	}
	list, err := s.c.KsefSessionInvoicesWithResponse(ctx, s.id)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Invoices) != 1 || *list.JSON200.Invoices[0].KsefNumber != *st.KsefNumber {
		t.Fatalf("session invoices: %v %s", err, list.Body)
	}
	upo, err = s.c.KsefSessionUpoWithResponse(ctx, s.id)
	if err != nil {
		t.Fatal(err)
	}
	if upo.StatusCode() != http.StatusOK {
		t.Fatalf("UPO: HTTP %d %s", upo.StatusCode(), upo.Body)
	}
	for _, want := range []string{s.id, *st.KsefNumber, kcrypto.SHA256Base64(xml), "<Nip>" + nipA + "</Nip>", "llcdpk88gk-2025-06-24"} {
		if !bytes.Contains(upo.Body, []byte(want)) {
			t.Errorf("UPO lacks %s", want)
		}
	}
	if v.e.SendCount(nipA, "llcdpk88gk-2025-06-24", kcrypto.SHA256Base64(xml)) != 1 {
		t.Errorf("send count %v", v.e.Stats().Sends)
	}
}

func TestUPOValidatesAgainstSchema(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint (libxml2-utils) not installed")
	}
	v := newEnv(t, nil)
	s := v.open(tokA)
	xml := readSample(t, "valid", sample)
	s.send(xml)
	s.send(withNumber(t, xml, "FV/2/2026"))
	s.send(withNumber(t, xml, "FV/3/2026"))
	s.send(xml) // a duplicate: not in the UPO
	v.settle()
	s.close()
	upo, err := s.c.KsefSessionUpoWithResponse(context.Background(), s.id)
	if err != nil || upo.StatusCode() != http.StatusOK {
		t.Fatalf("UPO: %v %s", err, upo.Body)
	}
	if n := bytes.Count(upo.Body, []byte("<Dokument>")); n != 3 {
		t.Errorf("UPO lists %d invoices, want the 3 accepted", n)
	}
	path := filepath.Join(t.TempDir(), "upo.xml")
	if err := os.WriteFile(path, upo.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	xsd := filepath.Join(sharedDir(t), "ksef", "official", "faktury", "upo", "schemy", "upo-v4-3.xsd")
	out, err := exec.Command(xmllint, "--nonet", "--noout", "--schema", xsd, path).CombinedOutput()
	if err != nil {
		t.Fatalf("UPO fails the schema: %v\n%s\n%s", err, out, upo.Body)
	}
}

// TestEveryValidSampleIsAccepted sends every published sample as it is, on the day of the test
// (the samples' issue dates are in the past): online, or in a batch session when it has
// attachments, which KSeF takes only there.
func TestEveryValidSampleIsAccepted(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "ksef", "samples", "valid")
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			xml, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			seller := sellerOf(t, xml)
			// Some samples share seller, kind and number: each gets its own emulator.
			v := newEnv(t, func(c *Config) { c.Tokens = map[string]string{"t-" + seller: seller} })
			v.clock.Advance(corpusDay().Sub(v.clock.Now()))
			r := newCorpusRun(v)
			inv, err := fa3.Parse(xml)
			if err != nil {
				t.Fatal(err)
			}
			s := r.add(seller, xml, inv.Zalacznik != nil)
			r.run()
			if s.status.Code != 200 {
				t.Fatalf("status %d %s", s.status.Code, derefS(s.status.Details))
			}
		})
	}
}

func TestEveryInvalidSampleIsRejectedWith430(t *testing.T) {
	v := newEnv(t, nil)
	s := v.open(tokA)
	dir := filepath.Join(sharedDir(t), "ksef", "samples", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	ids := make(map[string]string)
	for _, f := range files {
		xml, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(xml) == 0 {
			// The API needs a positive invoiceSize: an empty invoice is refused on sending.
			req := s.request(xml)
			req.Encrypted.InvoiceSize = 0
			resp, err := s.c.KsefInvoiceSendWithResponse(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceInput)
			req.Encrypted.InvoiceSize = 1 // a lie about the size: decided asynchronously
			resp, err = s.c.KsefInvoiceSendWithResponse(context.Background(), req)
			if err != nil || resp.JSON200 == nil {
				t.Fatalf("sending the empty invoice: %v %s", err, resp.Body)
			}
			ids[filepath.Base(f)] = resp.JSON200.Id
			continue
		}
		ids[filepath.Base(f)] = s.send(xml)
	}
	v.settle()
	secret, _ := os.ReadFile("/etc/hostname")
	for name, id := range ids {
		st := s.status(id)
		if st.Status.Code != 430 || st.InvoiceStatus != ksefapi.Rejected {
			t.Errorf("%s: status %d, want 430", name, st.Status.Code)
			continue
		}
		d := derefS(st.Status.Details)
		if d == "" {
			t.Errorf("%s: no details", name)
		}
		if len(bytes.TrimSpace(secret)) > 0 && strings.Contains(d, string(bytes.TrimSpace(secret))) {
			t.Errorf("%s: details leak a local file: %q", name, d)
		}
		t.Logf("%s: %s", name, d)
	}
}

func TestInvoiceStatusPaths(t *testing.T) {
	xml := readSample(t, "valid", sample)
	cases := []struct {
		name   string
		token  string
		mutate func(*onlineSession, []byte) ksefapi.KsefInvoiceSendRequest
		want   ksef.StatusCode
		detail string
	}{
		{"accepted", tokA, nil, ksef.StatusAccepted, ""},
		{"seller is not the context", tokB, nil, ksef.StatusPermission, nipA},
		{"schema", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			return s.request(bytes.Replace(x, []byte("<P_2>"), []byte("<P_2X>"), 1))
		}, ksef.StatusInvalid, "line"},
		{"totals that do not add up are KSeF's business no more than the ERP's", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			inv := string(x)
			i := strings.Index(inv, "<P_15>")
			j := strings.Index(inv, "</P_15>")
			return s.request([]byte(inv[:i] + "<P_15>999999.99" + inv[j:]))
		}, ksef.StatusAccepted, ""},
		{"issue date after the day of acceptance", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			inv := string(x)
			i := strings.Index(inv, "<P_1>")
			j := strings.Index(inv, "</P_1>")
			return s.request([]byte(inv[:i] + "<P_1>2026-03-03" + inv[j:])) // the clock says 2026-03-02
		}, ksef.StatusSemantic, "P_1"},
		{"decryption", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			r := s.request(x)
			other, _ := kcrypto.NewSessionKey()
			r.Encrypted.EncryptedInvoice, _ = kcrypto.Encrypt(x, other.Key, other.IV)
			return r
		}, ksef.StatusDecryption, ""},
		{"hash differs", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			r := s.request(x)
			r.Encrypted.InvoiceHash = kcrypto.SHA256Base64([]byte("something else"))
			return r
		}, ksef.StatusInvalid, "SHA-256"},
		{"size differs", tokA, func(s *onlineSession, x []byte) ksefapi.KsefInvoiceSendRequest {
			r := s.request(x)
			r.Encrypted.InvoiceSize++
			return r
		}, ksef.StatusInvalid, "invoiceSize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, nil)
			s := v.open(tc.token)
			req := s.request(xml)
			if tc.mutate != nil {
				req = tc.mutate(s, xml)
			}
			resp, err := s.c.KsefInvoiceSendWithResponse(context.Background(), req)
			if err != nil || resp.JSON200 == nil {
				t.Fatalf("send: %v %s", err, resp.Body)
			}
			v.settle()
			st := s.status(resp.JSON200.Id)
			if st.Status.Code != int32(tc.want) {
				t.Fatalf("status %d (%s), want %d", st.Status.Code, derefS(st.Status.Details), tc.want)
			}
			if st.Status.Description != tc.want.Description() {
				t.Errorf("description %q", st.Status.Description)
			}
			if !strings.Contains(derefS(st.Status.Details), tc.detail) {
				t.Errorf("details %q lack %q", derefS(st.Status.Details), tc.detail)
			}
			if (st.InvoiceStatus == ksefapi.Accepted) != (tc.want == ksef.StatusAccepted) {
				t.Errorf("invoiceStatus %s", st.InvoiceStatus)
			}
		})
	}
}

func TestDuplicate440NamesTheOriginal(t *testing.T) {
	v := newEnv(t, nil)
	xml := readSample(t, "valid", sample)
	first := v.open(tokA)
	id1 := first.send(xml)
	v.settle()
	orig := first.status(id1)
	first.close()

	second := v.open(tokA)
	// Another hash, same seller, kind and number: still a duplicate.
	id2 := second.send(bytes.Replace(xml, []byte("<P_1M>"), []byte("<P_1M>Nowe "), 1))
	v.settle()
	st := second.status(id2)
	if st.Status.Code != 440 || st.InvoiceStatus != ksefapi.Rejected {
		t.Fatalf("status %+v", st.Status)
	}
	ext := map[string]string{}
	if st.Status.Extensions != nil {
		for _, a := range *st.Status.Extensions {
			ext[a.Key] = a.Value
		}
	}
	if ext[ksef.ExtOriginalKsefNumber] != *orig.KsefNumber || ext[ksef.ExtOriginalSessionReferenceNumber] != first.id {
		t.Errorf("extensions %v, want %s and %s", ext, *orig.KsefNumber, first.id)
	}
	second.close()
	info := second.info()
	if info.Status.Code != 445 || info.FailedInvoiceCount != 1 {
		t.Errorf("session with only a duplicate: %+v", info)
	}
	upo, _ := second.c.KsefSessionUpoWithResponse(context.Background(), second.id)
	wantError(t, http.StatusBadRequest, upo.Body, upo.StatusCode(), ksef.CodeSessionNoUPO)
}

func TestAttachments(t *testing.T) {
	xml := readSample(t, "valid", "zalacznik-FA_3_Zalacznik_Przyklad_1.xml")
	seller := sellerOf(t, xml)
	for _, tc := range []struct {
		name   string
		batch  bool
		reject bool
		want   int32
	}{
		{"online", false, false, 415},
		{"batch", true, false, 200},
		{"batch, attachments not registered in e-Urząd Skarbowy", true, true, 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, func(c *Config) {
				c.Tokens = map[string]string{"t-" + seller: seller}
				c.RejectAttachments = tc.reject
			})
			v.clock.Advance(corpusDay().Sub(v.clock.Now()))
			r := newCorpusRun(v)
			s := r.add(seller, xml, tc.batch)
			r.run()
			if s.status.Code != tc.want {
				t.Fatalf("status %d %s, want %d", s.status.Code, derefS(s.status.Details), tc.want)
			}
		})
	}
}

func TestSessionErrors(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.MaxInvoicesPerSession = 1 })
	ctx := context.Background()
	xml := readSample(t, "valid", sample)
	s := v.open(tokA)

	other := v.client(tokB)
	st, _ := other.KsefSessionStatusWithResponse(ctx, s.id)
	wantError(t, http.StatusForbidden, st.Body, st.StatusCode(), ksef.CodeSessionAccess)
	send, _ := other.KsefInvoiceSendWithResponse(ctx, s.request(xml))
	wantError(t, http.StatusForbidden, send.Body, send.StatusCode(), ksef.CodeSessionAccess)

	st, _ = s.c.KsefSessionStatusWithResponse(ctx, "20260302-SO-0000000000-0000000000-00")
	wantError(t, http.StatusNotFound, st.Body, st.StatusCode(), ksef.CodeSessionUnknown)
	req := s.request(xml)
	req.SessionId = "nope"
	send, _ = s.c.KsefInvoiceSendWithResponse(ctx, req)
	wantError(t, http.StatusNotFound, send.Body, send.StatusCode(), ksef.CodeSessionUnknown)

	upo, _ := s.c.KsefSessionUpoWithResponse(ctx, s.id)
	e := wantError(t, http.StatusBadRequest, upo.Body, upo.StatusCode(), ksef.CodeSessionNoUPO)
	if !strings.Contains(details(e), "nie została zamknięta") {
		t.Errorf("details %q", details(e))
	}

	s.send(xml)
	send, _ = s.c.KsefInvoiceSendWithResponse(ctx, s.request(withNumber(t, xml, "2")))
	e = wantError(t, http.StatusBadRequest, send.Body, send.StatusCode(), ksef.CodeInvoiceSend)
	if !strings.Contains(details(e), "limit 1") {
		t.Errorf("details %q", details(e))
	}
	s.close()
	s.close() // idempotent
	send, _ = s.c.KsefInvoiceSendWithResponse(ctx, s.request(withNumber(t, xml, "3")))
	e = wantError(t, http.StatusBadRequest, send.Body, send.StatusCode(), ksef.CodeInvoiceSend)
	if !strings.Contains(details(e), "zamknięta") {
		t.Errorf("details %q", details(e))
	}

	is, _ := s.c.KsefInvoiceStatusWithResponse(ctx, "20260302-EE-0000000000-0000000000-00")
	wantError(t, http.StatusNotFound, is.Body, is.StatusCode(), ksef.CodeInvoiceUnknown)
	get, _ := s.c.KsefInvoiceGetWithResponse(ctx, ksef.NewNumber(nipA, v.clock.Now(), 77))
	wantError(t, http.StatusNotFound, get.Body, get.StatusCode(), ksef.CodeInvoiceUnknown)
	get, _ = s.c.KsefInvoiceGetWithResponse(ctx, "6891152920-20260302-000000000000-00")
	wantError(t, http.StatusBadRequest, get.Body, get.StatusCode(), ksef.CodeInvoiceUnknown)
}

func TestClosedWithoutInvoicesIsCancelled(t *testing.T) {
	v := newEnv(t, nil)
	s := v.open(tokA)
	s.close()
	if info := s.info(); info.Status.Code != 440 || info.SessionStatus != ksefapi.Closed {
		t.Fatalf("%+v", info)
	}
}

func TestSessionExpires(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.SessionLifetime = time.Hour })
	s := v.open(tokA)
	v.clock.Advance(time.Hour)
	if info := s.info(); info.SessionStatus != ksefapi.Closed {
		t.Fatalf("%+v", info)
	}
	resp, _ := s.c.KsefInvoiceSendWithResponse(context.Background(), s.request(readSample(t, "valid", sample)))
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceSend)
}

func TestOpenSessionErrors(t *testing.T) {
	v := newEnv(t, nil)
	c := v.client(tokA)
	ctx := context.Background()
	good, _ := v.encInfo()
	pub := v.e.PublicKey()
	wrap := func(key []byte) string {
		s, err := kcrypto.WrapKey(pub, key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name string
		req  ksefapi.KsefSessionOpenOnlineRequest
		code ksef.Code
	}{
		{"v2", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V2, EncryptionInfo: good}, ksef.CodeInvoiceVersion},
		{"IV base64", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: good.EncryptedKey, InitVector: "!!!"}}, ksef.CodeB64Decode},
		{"key base64", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: "%%%", InitVector: good.InitVector}}, ksef.CodeB64Decode},
		{"IV length", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: good.EncryptedKey, InitVector: b64(make([]byte, 12))}}, ksef.CodeAESIVLength},
		{"key length", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: wrap(make([]byte, 16)), InitVector: good.InitVector}}, ksef.CodeAESKeyLength},
		{"not wrapped for us", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: b64(make([]byte, 256)), InitVector: good.InitVector}}, ksef.CodeSessionInit},
		{"no encryption", ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3}, ksef.CodeSessionInit},
		{"no version", ksefapi.KsefSessionOpenOnlineRequest{EncryptionInfo: good}, ksef.CodeSessionInit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.KsefSessionOpenOnlineWithResponse(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), tc.code)
		})
	}
}

func TestSendErrors(t *testing.T) {
	v := newEnv(t, nil)
	s := v.open(tokA)
	xml := readSample(t, "valid", sample)
	ctx := context.Background()

	big := s.request(xml)
	big.Encrypted.InvoiceSize = DefaultMaxInvoiceSize + 1
	resp, _ := s.c.KsefInvoiceSendWithResponse(ctx, big)
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceSize)

	badHash := s.request(xml)
	badHash.Encrypted.InvoiceHash = "not base64!"
	resp, _ = s.c.KsefInvoiceSendWithResponse(ctx, badHash)
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeB64Decode)

	shortHash := s.request(xml)
	shortHash.Encrypted.InvoiceHash = b64([]byte("short"))
	resp, _ = s.c.KsefInvoiceSendWithResponse(ctx, shortHash)
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceInput)

	// A body over the limit: 413.
	huge := bytes.Repeat([]byte("A"), int(v.e.bodyLimit(ksef.OpInvoiceSend))+10)
	code, _, body := v.do(http.MethodPost, "/v2/invoices/send", tokA, "application/json",
		io.MultiReader(strings.NewReader(`{"sessionId":"`+s.id+`","encrypted":{"encryptedInvoice":"`), bytes.NewReader(huge), strings.NewReader(`"}}`)))
	wantError(t, http.StatusRequestEntityTooLarge, body, code, ksef.CodeInvoiceSize)

	// Base64 broken inside the JSON: 1005.
	code, _, body = v.do(http.MethodPost, "/v2/invoices/send", tokA, "application/json",
		strings.NewReader(`{"sessionId":"`+s.id+`","encrypted":{"encryptedInvoice":"**","invoiceHash":"x","invoiceSize":1}}`))
	wantError(t, http.StatusBadRequest, body, code, ksef.CodeB64Decode)
}

func TestAuthentication(t *testing.T) {
	v := newEnv(t, nil)
	for _, h := range []string{"", "Bearer", "Bearer unknown", "Basic " + tokA} {
		req, _ := http.NewRequest(http.MethodGet, v.srv.URL+"/v2/sessions/x", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := v.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, http.StatusUnauthorized, body, resp.StatusCode, ksef.CodeAuthChallenge)
		if strings.Contains(string(body), "unknown") {
			t.Errorf("the answer echoes the token: %s", body)
		}
	}
}

func sellerOf(t testing.TB, xml []byte) string {
	t.Helper()
	i := bytes.Index(xml, []byte("<Podmiot1>"))
	j := bytes.Index(xml[i:], []byte("<NIP>"))
	k := bytes.Index(xml[i+j:], []byte("</NIP>"))
	if i < 0 || j < 0 || k < 0 {
		t.Fatal("no seller NIP")
	}
	return string(xml[i+j+5 : i+j+k])
}

func derefS(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
