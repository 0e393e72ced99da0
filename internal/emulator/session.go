package emulator

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// api implements ksefapi.StrictServerInterface; its methods live next to the state they touch
// (session.go, invoice.go, batch.go, query.go, tools.go).
type api struct{ e *Emulator }

var _ ksefapi.StrictServerInterface = (*api)(nil)

func principalOf(ctx context.Context) principal { return infoFrom(ctx).p }

// Session status codes and descriptions, from the Ministry's API (SessionStatusResponse).
const (
	sessionOpen       = 100
	sessionProcessing = 150
	sessionClosed     = 170 // interactive: closed, invoices still being processed
	sessionDone       = 200
	sessionBadParts   = 405
	sessionKeyDecrypt = 415
	sessionTooMany    = 420
	sessionUnzip      = 430
	sessionDecrypt    = 435
	sessionCancelled  = 440
	sessionNoValid    = 445
)

func sessionStatusText(batch bool, code int) string {
	switch code {
	case sessionOpen:
		if batch {
			return "Sesja wsadowa rozpoczęta"
		}
		return "Sesja interaktywna otwarta"
	case sessionProcessing:
		return "Trwa przetwarzanie"
	case sessionClosed:
		return "Sesja interaktywna zamknięta"
	case sessionDone:
		if batch {
			return "Sesja wsadowa przetworzona pomyślnie"
		}
		return "Sesja interaktywna przetworzona pomyślnie"
	case sessionBadParts:
		return "Błąd weryfikacji poprawności dostarczonych elementów paczki"
	case sessionKeyDecrypt:
		return "Błąd odszyfrowania dostarczonego klucza"
	case sessionTooMany:
		return "Przekroczony limit faktur w sesji"
	case sessionUnzip:
		return "Błąd dekompresji pierwotnego archiwum"
	case sessionDecrypt:
		return "Błąd odszyfrowania zaszyfrowanych części archiwum"
	case sessionCancelled:
		return "Sesja anulowana"
	case sessionNoValid:
		return "Błąd weryfikacji, brak poprawnych faktur"
	}
	return "Nieznany błąd"
}

// checkVersion accepts only FA(3): FA(2) is no longer in force.
func checkVersion(v ksefapi.KsefInvoiceVersion) *apiError {
	switch v {
	case ksefapi.V3:
		return nil
	case ksefapi.V2:
		return badRequest(ksef.CodeInvoiceVersion, "Wersja v2 (FA(2)) nie jest przyjmowana; obowiązuje v3 (FA(3))")
	case "":
		return badRequest(ksef.CodeSessionInit, "Brak wymaganego pola invoiceVersion")
	}
	return badRequest(ksef.CodeInvoiceVersion, "Nieznana wersja schemy %q", clip(string(v), 40))
}

// unwrapKey checks EncryptionInfo and returns the AES key and IV. failCode is the operation's
// code for a key that cannot be unwrapped (SESSION_INIT, QUERY_INVOICE_INIT).
func (e *Emulator) unwrapKey(info ksefapi.EncryptionInfo, failCode ksef.Code) (key, iv []byte, _ *apiError) {
	if info.EncryptedKey == "" || info.InitVector == "" {
		return nil, nil, badRequest(failCode, "Brak wymaganych pól encryptionInfo.encryptedKey i encryptionInfo.initVector")
	}
	iv, err := kcrypto.DecodeBase64(info.InitVector)
	if err != nil {
		return nil, nil, badRequest(ksef.CodeB64Decode, "encryptionInfo.initVector nie jest poprawnym base64")
	}
	if len(iv) != kcrypto.IVSize {
		return nil, nil, badRequest(ksef.CodeAESIVLength, "Wektor inicjujący ma %d bajtów, wymagane %d", len(iv), kcrypto.IVSize)
	}
	key, err = kcrypto.UnwrapKey(e.key, info.EncryptedKey)
	switch {
	case errors.Is(err, kcrypto.ErrBase64):
		return nil, nil, badRequest(ksef.CodeB64Decode, "encryptionInfo.encryptedKey nie jest poprawnym base64")
	case err != nil:
		// No reason is given, as KSeF gives none: telling OAEP failures apart helps attacks.
		return nil, nil, badRequest(failCode, "Nie udało się odszyfrować klucza symetrycznego kluczem publicznym KSeF (RSA-OAEP, SHA-256)")
	}
	if len(key) != kcrypto.KeySize {
		return nil, nil, badRequest(ksef.CodeAESKeyLength, "Klucz symetryczny ma %d bajtów, wymagane %d (AES-256)", len(key), kcrypto.KeySize)
	}
	return key, iv, nil
}

// sessionOf returns the caller's session; e.mu must be held.
func (e *Emulator) sessionOf(ctx context.Context, id string) (*session, *apiError) {
	s := e.sessions[id]
	if s == nil {
		return nil, notFound(ksef.CodeSessionUnknown, "Nieznany identyfikator sesji %q", clip(id, 100))
	}
	if s.Owner != principalOf(ctx).nip {
		return nil, errf(http.StatusForbidden, ksef.CodeSessionAccess, "Sesja %s należy do innego kontekstu", id)
	}
	return s, nil
}

func (a *api) KsefSessionOpenOnline(ctx context.Context, req ksefapi.KsefSessionOpenOnlineRequestObject) (ksefapi.KsefSessionOpenOnlineResponseObject, error) {
	e := a.e
	b := req.Body
	if err := checkVersion(b.InvoiceVersion); err != nil {
		return nil, err
	}
	key, iv, err := e.unwrapKey(b.EncryptionInfo, ksef.CodeSessionInit)
	if err != nil {
		return nil, err
	}
	p := principalOf(ctx)
	now := e.now()
	lifetime := e.cfg.SessionLifetime
	if e.faults.expireEarly() {
		e.stats.fault("earlyExpiry")
		lifetime = e.cfg.Faults.EarlyExpiry
	}
	e.mu.Lock()
	s := &session{
		ID:       e.newRef("SO", now),
		Owner:    p.nip,
		TokenRef: p.ref,
		Created:  now,
		Expires:  now.Add(lifetime),
		key:      key,
		iv:       iv,
	}
	e.sessions[s.ID] = s
	e.logSession(s)
	e.mu.Unlock()
	e.stats.session()
	return ksefapi.KsefSessionOpenOnline200JSONResponse{Id: s.ID, Created: now}, nil
}

func (a *api) KsefSessionStatus(ctx context.Context, req ksefapi.KsefSessionStatusRequestObject) (ksefapi.KsefSessionStatusResponseObject, error) {
	e := a.e
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.sessionOf(ctx, req.SessionId)
	if err != nil {
		return nil, err
	}
	return ksefapi.KsefSessionStatus200JSONResponse{SessionInfo: e.sessionInfo(s, e.now())}, nil
}

// tally counts a session's invoices by what they show at now; e.mu must be held.
func (e *Emulator) tally(s *session, now time.Time) (accepted, rejected, pending int) {
	for _, id := range s.invoiceIDs(now) {
		inv := e.invoices[id]
		switch {
		case !inv.final(now):
			pending++
		case inv.Status == ksef.StatusAccepted:
			accepted++
		default:
			rejected++
		}
	}
	return
}

// invoiceIDs are the session's invoices shown at now: none while a stuck batch hides them.
func (s *session) invoiceIDs(now time.Time) []string {
	if now.Before(s.BatchDue) {
		return nil
	}
	return s.InvoiceIDs
}

// sessionInfo is the session's status at now; e.mu must be held.
func (e *Emulator) sessionInfo(s *session, now time.Time) ksefapi.SessionInfo {
	ok, failed, pending := e.tally(s, now)
	info := ksefapi.SessionInfo{
		Batch:                  s.Batch,
		InvoiceCount:           int32(len(s.invoiceIDs(now))),
		SuccessfulInvoiceCount: int32(ok),
		FailedInvoiceCount:     int32(failed),
		SessionStatus:          ksefapi.Closed,
	}
	code, details := e.sessionState(s, now, ok, pending)
	if code == sessionOpen {
		info.SessionStatus = ksefapi.Active
	}
	info.Status = ksefapi.StatusInfo{Code: int32(code), Description: sessionStatusText(s.Batch, code)}
	if details != "" {
		info.Status.Details = &details
	}
	return info
}

func (e *Emulator) sessionState(s *session, now time.Time, accepted, pending int) (int, string) {
	if s.Batch && s.BatchDone && s.Closed.IsZero() {
		return s.BatchStatus, s.BatchDetail // failed right after opening
	}
	if s.closedAt(now).IsZero() {
		return sessionOpen, ""
	}
	if s.Batch {
		switch {
		case s.Closed.IsZero():
			return sessionCancelled, "Przekroczono czas wysyłki"
		case !s.BatchDone || now.Before(s.BatchDue):
			return sessionProcessing, ""
		case s.BatchStatus != 0:
			return s.BatchStatus, s.BatchDetail
		case pending > 0:
			return sessionProcessing, ""
		}
	} else if pending > 0 {
		return sessionClosed, ""
	}
	switch {
	case len(s.InvoiceIDs) == 0:
		return sessionCancelled, "Nie przesłano faktur"
	case accepted == 0:
		return sessionNoValid, ""
	}
	return sessionDone, ""
}

func (a *api) KsefSessionClose(ctx context.Context, req ksefapi.KsefSessionCloseRequestObject) (ksefapi.KsefSessionCloseResponseObject, error) {
	e := a.e
	now := e.now()
	e.mu.Lock()
	s, err := e.sessionOf(ctx, req.SessionId)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	if !s.Closed.IsZero() {
		if s.Batch {
			// KSeF refuses to close a batch session twice (21180 in KSeF 2.0, answered here with the
			// seed's SESSION_CLOSE): a retry after a close whose answer was lost fails, and the
			// package is not processed again.
			ok, _, pending := e.tally(s, now)
			code, _ := e.sessionState(s, now, ok, pending)
			e.mu.Unlock()
			return nil, badRequest(ksef.CodeSessionClose, "Status sesji %d uniemożliwia jej zamknięcie", code)
		}
		// Closing an interactive session again answers true.
		e.mu.Unlock()
		return ksefapi.KsefSessionClose200JSONResponse{Result: true}, nil
	}
	if !s.Batch {
		s.Closed = now
		if s.Expires.Before(now) {
			s.Closed = s.Expires
		}
		e.logSession(s)
		e.mu.Unlock()
		return ksefapi.KsefSessionClose200JSONResponse{Result: true}, nil
	}
	if !now.Before(s.Expires) {
		e.mu.Unlock()
		return nil, badRequest(ksef.CodeSessionClose, "Sesja wsadowa %s została anulowana: przekroczono czas wysyłki części", s.ID)
	}
	s.Closed = now
	parts := make(map[int32]string, len(s.parts))
	for k, v := range s.parts {
		parts[k] = v
	}
	if s.BatchDone {
		// Failed right after opening: closed as asked, never processed.
		e.logSession(s)
		e.mu.Unlock()
		os.RemoveAll(filepath.Join(e.tempDir, "batch", s.ID))
		return ksefapi.KsefSessionClose200JSONResponse{Result: true}, nil
	}
	fail := e.faults.packageFail()
	if e.faults.batchStuck() {
		e.stats.fault("batchStuck")
		s.BatchDue = now.Add(e.cfg.Faults.BatchStuckFor)
	}
	e.logSession(s)
	e.mu.Unlock()
	if !e.spawn(func() { e.processBatch(s, parts, fail) }) {
		return nil, errf(http.StatusServiceUnavailable, ksef.CodeSessionClose, "Emulator kończy pracę")
	}
	return ksefapi.KsefSessionClose200JSONResponse{Result: true}, nil
}

func (a *api) KsefSessionInvoices(ctx context.Context, req ksefapi.KsefSessionInvoicesRequestObject) (ksefapi.KsefSessionInvoicesResponseObject, error) {
	e := a.e
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.sessionOf(ctx, req.SessionId)
	if err != nil {
		return nil, err
	}
	ids := s.invoiceIDs(now)
	out := make([]ksefapi.InvoiceInfo, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.invoices[id].info(now))
	}
	return ksefapi.KsefSessionInvoices200JSONResponse{Invoices: out}, nil
}

func (a *api) KsefSessionUpo(ctx context.Context, req ksefapi.KsefSessionUpoRequestObject) (ksefapi.KsefSessionUpoResponseObject, error) {
	e := a.e
	now := e.now()
	e.mu.Lock()
	s, err := e.sessionOf(ctx, req.SessionId)
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	ok, _, pending := e.tally(s, now)
	var docs []*invoice
	switch {
	case s.closedAt(now).IsZero():
		err = badRequest(ksef.CodeSessionNoUPO, "Sesja %s nie została zamknięta; UPO powstaje po zamknięciu sesji", s.ID)
	case s.Batch && (s.Closed.IsZero() || !s.BatchDone || now.Before(s.BatchDue)) || pending > 0:
		err = badRequest(ksef.CodeSessionNoUPO, "UPO sesji %s nie zostało jeszcze wygenerowane: trwa przetwarzanie faktur", s.ID)
	case ok == 0:
		err = badRequest(ksef.CodeSessionNoUPO, "Sesja %s nie zawiera poprawnie przyjętych faktur", s.ID)
	default:
		for _, id := range s.InvoiceIDs {
			if inv := e.invoices[id]; inv.Status == ksef.StatusAccepted {
				docs = append(docs, inv)
			}
		}
	}
	sess := *s
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	xml, merr := buildUPO(&sess, docs)
	if merr != nil {
		return nil, merr
	}
	return ksefapi.KsefSessionUpo200TextxmlResponse{Body: bytes.NewReader(xml), ContentLength: int64(len(xml))}, nil
}
