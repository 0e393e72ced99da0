package emulator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// job is an invoice sent in an interactive session, waiting for a worker.
type job struct {
	inv          *invoice
	ciphertext   []byte
	key, iv      []byte
	declaredHash string
	declaredSize int64
}

func (a *api) KsefInvoiceSend(ctx context.Context, req ksefapi.KsefInvoiceSendRequestObject) (ksefapi.KsefInvoiceSendResponseObject, error) {
	e := a.e
	b := req.Body
	enc := b.Encrypted
	switch {
	case b.SessionId == "":
		return nil, badRequest(ksef.CodeInvoiceInput, "Brak wymaganego pola sessionId")
	case len(enc.EncryptedInvoice) == 0:
		return nil, badRequest(ksef.CodeInvoiceInput, "Brak wymaganego pola encrypted.encryptedInvoice")
	case enc.InvoiceHash == "":
		return nil, badRequest(ksef.CodeInvoiceInput, "Brak wymaganego pola encrypted.invoiceHash")
	case enc.InvoiceSize <= 0:
		return nil, badRequest(ksef.CodeInvoiceInput, "Pole encrypted.invoiceSize musi być dodatnie")
	case enc.InvoiceSize > e.cfg.MaxInvoiceSize:
		return nil, badRequest(ksef.CodeInvoiceSize, "Faktura ma %d bajtów, dopuszczalne %d", enc.InvoiceSize, e.cfg.MaxInvoiceSize)
	}
	if h, err := kcrypto.DecodeBase64(enc.InvoiceHash); err != nil {
		return nil, badRequest(ksef.CodeB64Decode, "encrypted.invoiceHash nie jest poprawnym base64")
	} else if len(h) != 32 {
		return nil, badRequest(ksef.CodeInvoiceInput, "encrypted.invoiceHash nie jest skrótem SHA-256 (%d bajtów)", len(h))
	}

	now := e.now()
	e.mu.Lock()
	s, err := e.sessionOf(ctx, b.SessionId)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	switch {
	case s.Batch:
		err = badRequest(ksef.CodeInvoiceSend, "Sesja %s jest sesją wsadową: faktury przesyła się w paczce", s.ID)
	case !s.open(now):
		err = badRequest(ksef.CodeInvoiceSend, "Sesja %s jest zamknięta", s.ID)
	case len(s.InvoiceIDs) >= e.cfg.MaxInvoicesPerSession:
		err = badRequest(ksef.CodeInvoiceSend, "Przekroczono limit %d faktur w sesji %s", e.cfg.MaxInvoicesPerSession, s.ID)
	}
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	inv := e.newInvoice(s, now)
	inv.Hash, inv.Size = enc.InvoiceHash, enc.InvoiceSize
	key, iv := s.key, s.iv
	e.mu.Unlock()

	if !e.begin() {
		return nil, errf(http.StatusServiceUnavailable, ksef.CodeInvoiceSend, "Emulator kończy pracę")
	}
	j := job{inv: inv, ciphertext: enc.EncryptedInvoice, key: key, iv: iv, declaredHash: enc.InvoiceHash, declaredSize: enc.InvoiceSize}
	select {
	case e.jobs <- j:
	case <-e.ctx.Done():
		e.done()
	}
	return ksefapi.KsefInvoiceSend200JSONResponse{Id: inv.ID, Created: now}, nil
}

// newInvoice registers an invoice received in s at now; e.mu must be held.
func (e *Emulator) newInvoice(s *session, now time.Time) *invoice {
	delay := e.cfg.ProcessingDelay
	due := now.Add(delay)
	if e.faults.stuck() {
		e.stats.fault("stuck")
		due = due.Add(e.cfg.Faults.StuckFor)
	}
	inv := &invoice{
		ID:        e.newRef("EE", now),
		SessionID: s.ID,
		Ordinal:   len(s.InvoiceIDs) + 1,
		Owner:     s.Owner,
		Received:  now,
		Halfway:   now.Add(delay / 2),
		Due:       due,
		Offline:   s.Offline,
		cancel:    e.faults.cancel(),
	}
	e.invoices[inv.ID] = inv
	s.InvoiceIDs = append(s.InvoiceIDs, inv.ID)
	e.logInvoice(inv)
	return inv
}

func (e *Emulator) worker() {
	defer e.wg.Done()
	for {
		select {
		case j := <-e.jobs:
			e.runJob(j)
		case <-e.ctx.Done():
			return
		}
	}
}

func (e *Emulator) runJob(j job) {
	defer e.done()
	plain, err := kcrypto.Decrypt(j.ciphertext, j.key, j.iv)
	if err != nil {
		e.stats.sent("", "", j.declaredHash)
		e.finish(j.inv, outcome{status: ksef.StatusDecryption, details: "Nie udało się odszyfrować faktury kluczem i wektorem sesji"})
		return
	}
	e.processInvoice(j.inv, plain, j.declaredHash, j.declaredSize, true)
}

// outcome is what processing decided about an invoice.
type outcome struct {
	status     ksef.StatusCode
	details    string
	extensions []ksefapi.StatusInfoAttribute
}

// processInvoice verifies a decrypted invoice as KSeF does (official/faktury/weryfikacja-faktury.md,
// nothing else) and records the outcome. The declared hash and size are checked when given
// (interactive sessions). Checks, in order: hash and size (430), XML rules, schema and size limits
// (430), attachments (415: online always, in a batch when RejectAttachments), seller = context
// (410), P_1 not after the day of acceptance (450), NIP check digits on production (450),
// duplicate (440).
func (e *Emulator) processInvoice(inv *invoice, xml []byte, declaredHash string, declaredSize int64, online bool) {
	defer func() {
		if v := recover(); v != nil {
			e.log.Error().Interface("panic", v).Str("invoice", inv.ID).Msg("processing panicked")
			e.finish(inv, outcome{status: ksef.StatusUnknown, details: "Nieznany błąd (500)"})
		}
	}()
	hash := kcrypto.SHA256Base64(xml)
	e.mu.Lock()
	inv.Hash, inv.Size = hash, int64(len(xml))
	e.mu.Unlock()

	if declaredSize > 0 && int64(len(xml)) != declaredSize {
		e.stats.sent("", "", hash)
		e.finish(inv, outcome{status: ksef.StatusInvalid, details: fmt.Sprintf("Rozmiar faktury (%d B) nie zgadza się z invoiceSize (%d B)", len(xml), declaredSize)})
		return
	}
	if declaredHash != "" && hash != declaredHash {
		e.stats.sent("", "", hash)
		e.finish(inv, outcome{status: ksef.StatusInvalid, details: "Skrót SHA-256 faktury nie zgadza się z invoiceHash"})
		return
	}
	res, err := e.validator.Validate(e.ctx, xml)
	if err != nil {
		e.stats.sent("", "", hash)
		e.finish(inv, outcome{status: ksef.StatusInvalid, details: validationDetails(err)})
		return
	}
	doc := res.Invoice
	e.mu.Lock()
	describe(inv, doc)
	e.mu.Unlock()

	var o outcome
	switch {
	case online && doc.Zalacznik != nil:
		// The seed's ksefInvoiceSend has no technical correction of an offline invoice, the
		// Ministry's only exception.
		o = outcome{status: ksef.StatusAttachment, details: "Faktury z załącznikami można wysyłać wyłącznie w sesji wsadowej"}
	case !online && e.cfg.RejectAttachments && doc.Zalacznik != nil:
		o = outcome{status: ksef.StatusAttachment, details: "Kontekst nie zgłosił w e-Urzędzie Skarbowym wysyłki faktur z załącznikami"}
	case doc.SellerNIP() != inv.Owner:
		o = outcome{status: ksef.StatusPermission, details: fmt.Sprintf("NIP sprzedawcy %s różni się od NIP kontekstu %s", doc.SellerNIP(), inv.Owner)}
	default:
		if err := fa3.CheckIssueDate(doc, inv.Received); err != nil {
			o = outcome{status: ksef.StatusSemantic, details: validationDetails(err)}
		} else if e.cfg.Environment == EnvironmentProd {
			if err := fa3.CheckNIPs(doc); err != nil {
				o = outcome{status: ksef.StatusSemantic, details: validationDetails(err)}
			}
		}
	}
	if o.status == 0 && inv.cancel != 0 {
		// KSeF gave up on an invoice it would have accepted: not a send that counts, so sending
		// it again is right.
		e.stats.fault("cancel")
		o = outcome{status: inv.cancel}
		if inv.cancel == ksef.StatusCancelled {
			o.details = cancelledDetails
		}
		e.finish(inv, o)
		return
	}
	e.stats.sent(doc.SellerNIP(), doc.InvoiceNumber(), hash)
	if o.status != 0 {
		e.finish(inv, o)
		return
	}
	e.accept(inv, xml)
}

// cancelledDetails are the seed's details of status 550.
const cancelledDetails = "Przetwarzanie zostało przerwane z przyczyn wewnętrznych systemu. Spróbuj ponownie"

// describe copies what the API and the queries show from the parsed invoice; e.mu must be held.
func describe(inv *invoice, doc *fa3.Invoice) {
	inv.Number = doc.InvoiceNumber()
	inv.Type = doc.InvoiceType()
	inv.IssueDate = doc.IssueDate()
	inv.SellerNIP = doc.SellerNIP()
	inv.SellerName = doc.Podmiot1.DaneIdentyfikacyjne.Nazwa
	inv.BuyerNIP = doc.BuyerNIP()
	b := doc.Podmiot2.DaneIdentyfikacyjne
	inv.BuyerName = b.Nazwa
	switch {
	case b.NIP != "":
		inv.BuyerIDType, inv.BuyerID = "Nip", b.NIP
	case b.NrVatUE != "":
		inv.BuyerIDType, inv.BuyerID = "VatUe", b.KodUE+b.NrVatUE
	case b.NrID != "":
		inv.BuyerIDType, inv.BuyerID = "Other", b.KodKraju+b.NrID
	default:
		inv.BuyerIDType = "None"
	}
	inv.ThirdNIPs = nil
	for _, p := range doc.Podmiot3 {
		if n := p.DaneIdentyfikacyjne.NIP; n != "" && !slices.Contains(inv.ThirdNIPs, n) {
			inv.ThirdNIPs = append(inv.ThirdNIPs, n)
		}
	}
	if pu := doc.PodmiotUpowazniony; pu != nil {
		inv.Authorized = pu.DaneIdentyfikacyjne.NIP
	}
	inv.Currency = doc.Currency()
	inv.Gross = doc.GrossTotal()
	inv.Attachment = doc.Zalacznik != nil
}

func validationDetails(err error) string {
	var ve *fa3.ValidationError
	if errors.As(err, &ve) {
		return clip(ve.Error(), 1000)
	}
	return clip(err.Error(), 1000)
}

// duplicateKey identifies an invoice for the duplicate check: seller NIP, invoice kind and
// number (P_2), as KSeF judges duplicates.
func duplicateKey(inv *invoice) string {
	return inv.SellerNIP + "\x00" + inv.Type + "\x00" + inv.Number
}

// accept gives the invoice its KSeF number, or ends it as a duplicate of an earlier one. The
// XML of accepted invoices is kept on disk, not in memory.
func (e *Emulator) accept(inv *invoice, xml []byte) {
	path := e.xmlPath(inv)
	if err := os.WriteFile(path, xml, 0o600); err != nil {
		e.log.Error().Err(err).Str("invoice", inv.ID).Msg("storing the invoice")
		e.finish(inv, outcome{status: ksef.StatusUnknown, details: "Nieznany błąd (500)"})
		return
	}
	e.mu.Lock()
	key := duplicateKey(inv)
	if orig := e.accepted[key]; orig != nil {
		e.mu.Unlock()
		os.Remove(path)
		e.finish(inv, outcome{
			status:  ksef.StatusDuplicate,
			details: fmt.Sprintf("Faktura %s została już przyjęta z numerem KSeF %s", inv.Number, orig.KsefNumber),
			extensions: []ksefapi.StatusInfoAttribute{
				{Key: ksef.ExtOriginalSessionReferenceNumber, Value: orig.SessionID},
				{Key: ksef.ExtOriginalKsefNumber, Value: orig.KsefNumber},
			},
		})
		return
	}
	e.counter++
	technical := (e.randUint64()&0xFFFF)<<32 | e.counter&0xFFFFFFFF
	inv.Acquisition, inv.Done = inv.Due, e.now()
	inv.KsefNumber = ksef.NewNumber(inv.SellerNIP, inv.Acquisition, technical)
	inv.Stored = inv.Acquisition.Add(e.cfg.StorageDelay)
	inv.Status = ksef.StatusAccepted
	inv.Processed = true
	e.accepted[key] = inv
	e.byKsef[inv.KsefNumber] = inv
	e.logInvoice(inv)
	e.mu.Unlock()
	e.stats.outcome(ksef.StatusAccepted)
}

// finish records a rejection.
func (e *Emulator) finish(inv *invoice, o outcome) {
	e.mu.Lock()
	inv.Status, inv.Details, inv.Extensions = o.status, o.details, o.extensions
	inv.Processed, inv.Done = true, e.now()
	e.logInvoice(inv)
	e.mu.Unlock()
	e.stats.outcome(o.status)
}

// Timing tells when the emulator received an invoice and when its outcome became visible to
// ksefInvoiceStatus (ok false while it is processing, or for an unknown id). The difference is
// the emulator's own share of an invoice's latency: its configured processing delay, or its
// checks when they take longer.
func (e *Emulator) Timing(id string) (received, visible time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inv := e.invoices[id]
	if inv == nil || !inv.Processed {
		return time.Time{}, time.Time{}, false
	}
	return inv.Received, later(inv.Due, inv.Done), true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (a *api) KsefInvoiceStatus(ctx context.Context, req ksefapi.KsefInvoiceStatusRequestObject) (ksefapi.KsefInvoiceStatusResponseObject, error) {
	e := a.e
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	inv := e.invoices[req.InvoiceId]
	if inv == nil || inv.Owner != principalOf(ctx).nip {
		return nil, notFound(ksef.CodeInvoiceUnknown, "Nieznany identyfikator faktury %q", clip(req.InvoiceId, 100))
	}
	return ksefapi.KsefInvoiceStatus200JSONResponse{Invoices: []ksefapi.InvoiceInfo{inv.info(now)}}, nil
}

// visibleTo reports whether the context may read the invoice: as seller, buyer, third party or
// authorized subject.
func (inv *invoice) visibleTo(nip string) bool {
	return inv.SellerNIP == nip || inv.BuyerNIP == nip || inv.Authorized == nip || slices.Contains(inv.ThirdNIPs, nip)
}

func (a *api) KsefInvoiceGet(ctx context.Context, req ksefapi.KsefInvoiceGetRequestObject) (ksefapi.KsefInvoiceGetResponseObject, error) {
	e := a.e
	num := req.InvoiceKsefNumber
	if err := ksef.ValidateNumber(num); err != nil {
		return nil, badRequest(ksef.CodeInvoiceUnknown, "Nieprawidłowy numer KSeF: %s", clip(err.Error(), 200))
	}
	now := e.now()
	e.mu.Lock()
	inv := e.byKsef[num]
	var err *apiError
	switch {
	case inv == nil || !inv.accepted(now) || !inv.visibleTo(principalOf(ctx).nip):
		err = notFound(ksef.CodeInvoiceUnknown, "Nieznany numer KSeF %s", num)
	case !inv.stored(now):
		err = notFound(ksef.CodeInvoiceUnknown, "Faktura %s nie jest jeszcze dostępna do pobrania (trwa trwały zapis); spróbuj ponownie później", num)
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	f, oerr := os.Open(e.xmlPath(inv))
	if oerr != nil {
		e.log.Error().Err(oerr).Str("ksefNumber", num).Msg("reading a stored invoice")
		return nil, errf(http.StatusInternalServerError, ksef.CodeInvoiceStatus, "Nie udało się odczytać faktury %s", num)
	}
	return ksefapi.KsefInvoiceGet200TextxmlResponse{Body: f, ContentLength: inv.Size}, nil
}

// xmlPath is where an accepted invoice's XML is kept: the data directory when there is one,
// else the temporary directory.
func (e *Emulator) xmlPath(inv *invoice) string {
	return filepath.Join(e.xmlDir, inv.ID+".xml")
}
