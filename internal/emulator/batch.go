package emulator

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func (a *api) KsefSessionOpenBatch(ctx context.Context, req ksefapi.KsefSessionOpenBatchRequestObject) (ksefapi.KsefSessionOpenBatchResponseObject, error) {
	e := a.e
	b := req.Body
	if err := checkVersion(b.InvoiceVersion); err != nil {
		return nil, err
	}
	if err := e.checkBatchInfo(&b.BatchInfo); err != nil {
		return nil, err
	}
	key, iv, err := e.unwrapKey(b.EncryptionInfo, ksef.CodeSessionInit)
	if err != nil {
		return nil, err
	}
	var tok [24]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, errf(http.StatusInternalServerError, ksef.CodeSessionOpen, "Nie udało się wygenerować tokenu przesyłania")
	}
	p := principalOf(ctx)
	now := e.now()
	bi := b.BatchInfo
	parts := slices.Clone(bi.BatchParts)
	slices.SortFunc(parts, func(x, y ksefapi.BatchPartInfo) int { return int(x.Ordinal - y.Ordinal) })
	bi.BatchParts = parts

	e.mu.Lock()
	s := &session{
		ID:          e.newRef("SB", now),
		Owner:       p.nip,
		TokenRef:    p.ref,
		Batch:       true,
		Offline:     b.Offline,
		Created:     now,
		Expires:     now.Add(time.Duration(len(parts)) * e.cfg.BatchPartWindow),
		BatchInfo:   &bi,
		uploadToken: hex.EncodeToString(tok[:]),
		parts:       make(map[int32]string),
		key:         key,
		iv:          iv,
	}
	if e.faults.batchOpenFail() {
		e.stats.fault("batchOpenFail")
		s.BatchDone, s.BatchStatus, s.BatchEnded = true, sessionKeyDecrypt, now
	}
	e.sessions[s.ID] = s
	e.logSession(s)
	e.mu.Unlock()
	e.stats.session()

	base := infoFrom(ctx).baseURL
	reqs := make([]ksefapi.PartUploadInfo, 0, len(parts))
	for _, part := range parts {
		reqs = append(reqs, ksefapi.PartUploadInfo{
			Ordinal: part.Ordinal,
			Method:  http.MethodPut,
			Url:     fmt.Sprintf("%s/upload/%s/%d", base, s.ID, part.Ordinal),
			Headers: []ksefapi.PartUploadHeader{
				{Name: UploadTokenHeader, Value: s.uploadToken},
				{Name: "Content-Type", Value: "application/octet-stream"},
			},
		})
	}
	return ksefapi.KsefSessionOpenBatch200JSONResponse{Id: s.ID, Created: now, PartUploadRequests: reqs}, nil
}

// checkBatchInfo checks the declared package: 1..BatchMaxParts parts numbered 1..n, each an
// AES-CBC ciphertext of at most BatchMaxPartSize plaintext bytes, at most BatchMaxSize in all,
// with SHA-256 hashes in base64.
func (e *Emulator) checkBatchInfo(bi *ksefapi.BatchInfo) *apiError {
	n := len(bi.BatchParts)
	switch {
	case n == 0:
		return badRequest(ksef.CodeSessionInit, "batchInfo.batchParts musi zawierać co najmniej jedną część")
	case n > e.cfg.BatchMaxParts:
		return badRequest(ksef.CodeSessionInit, "Paczka ma %d części, dopuszczalne %d", n, e.cfg.BatchMaxParts)
	case bi.BatchSize <= 0:
		return badRequest(ksef.CodeSessionInit, "batchInfo.batchSize musi być dodatni")
	case bi.BatchSize > e.cfg.BatchMaxSize:
		return badRequest(ksef.CodeInvoiceSize, "Paczka ma %d B, dopuszczalne %d B", bi.BatchSize, e.cfg.BatchMaxSize)
	}
	if err := checkHash(bi.BatchHash, "batchInfo.batchHash"); err != nil {
		return err
	}
	seen := make(map[int32]bool, n)
	maxPart := kcrypto.EncryptedSize(e.cfg.BatchMaxPartSize)
	for _, p := range bi.BatchParts {
		switch {
		case p.Ordinal < 1 || int(p.Ordinal) > n || seen[p.Ordinal]:
			return badRequest(ksef.CodeSessionInit, "Części muszą mieć kolejne numery 1..%d bez powtórzeń (ordinal %d)", n, p.Ordinal)
		case p.PartSize <= 0 || p.PartSize%16 != 0:
			return badRequest(ksef.CodeSessionInit, "Część %d: rozmiar zaszyfrowanej części (%d B) musi być dodatnią wielokrotnością 16", p.Ordinal, p.PartSize)
		case p.PartSize > maxPart:
			return badRequest(ksef.CodeInvoiceSize, "Część %d ma %d B, dopuszczalne %d B przed zaszyfrowaniem", p.Ordinal, p.PartSize, e.cfg.BatchMaxPartSize)
		}
		seen[p.Ordinal] = true
		if err := checkHash(p.PartHash, fmt.Sprintf("partHash części %d", p.Ordinal)); err != nil {
			return err
		}
	}
	return nil
}

func checkHash(s, what string) *apiError {
	if s == "" {
		return badRequest(ksef.CodeSessionInit, "Brak wymaganego pola %s", what)
	}
	h, err := kcrypto.DecodeBase64(s)
	if err != nil {
		return badRequest(ksef.CodeB64Decode, "%s nie jest poprawnym base64", what)
	}
	if len(h) != 32 {
		return badRequest(ksef.CodeSessionInit, "%s nie jest skrótem SHA-256 (%d bajtów)", what, len(h))
	}
	return nil
}

// handleUpload receives one encrypted part: 201 when it matches its declared size and hash,
// 400 for bad data, 401 for a wrong upload token, 403 when the session no longer takes parts.
// The part is streamed to disk while hashed, in constant memory.
func (e *Emulator) handleUpload(w http.ResponseWriter, r *http.Request) {
	hang, afterStore := e.faults.uploadHang()
	if hang && !afterStore {
		// The service never reads the part; the proxy in front gives up after the hang.
		e.stats.fault("uploadHang")
		e.cfg.Sleep(r.Context(), e.cfg.Faults.UploadHangFor)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusGatewayTimeout)
		io.WriteString(w, html504)
		return
	}
	id := r.PathValue("sessionId")
	ord64, perr := strconv.ParseInt(r.PathValue("ordinal"), 10, 32)
	now := e.now()
	e.mu.Lock()
	s := e.sessions[id]
	var (
		err  *apiError
		part ksefapi.BatchPartInfo
	)
	switch {
	case s == nil || !s.Batch:
		err = notFound(ksef.CodeSessionUnknown, "Nieznany identyfikator sesji wsadowej %q", clip(id, 100))
	case s.uploadToken == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get(UploadTokenHeader)), []byte(s.uploadToken)) != 1:
		// A session restored from the journal has no upload token: it takes no parts.
		err = errf(http.StatusUnauthorized, ksef.CodeAuthChallenge, "Brak lub nieprawidłowy nagłówek %s", UploadTokenHeader)
	case !s.Closed.IsZero():
		err = errf(http.StatusForbidden, ksef.CodeInvoiceSend, "Sesja wsadowa %s jest zamknięta", s.ID)
	case !now.Before(s.Expires):
		err = errf(http.StatusForbidden, ksef.CodeInvoiceSend, "Upłynął czas na przesłanie części sesji %s", s.ID)
	case perr != nil:
		err = badRequest(ksef.CodeInvoiceInput, "Nieprawidłowy numer części %q", clip(r.PathValue("ordinal"), 20))
	default:
		i := slices.IndexFunc(s.BatchInfo.BatchParts, func(p ksefapi.BatchPartInfo) bool { return p.Ordinal == int32(ord64) })
		if i < 0 {
			err = badRequest(ksef.CodeInvoiceInput, "Część %d nie została zadeklarowana", ord64)
		} else {
			part = s.BatchInfo.BatchParts[i]
		}
	}
	e.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	path, err := e.receivePart(r.Body, s.ID, part)
	if err != nil {
		writeError(w, err)
		return
	}
	e.mu.Lock()
	if !s.Closed.IsZero() {
		e.mu.Unlock()
		os.Remove(path)
		writeError(w, errf(http.StatusForbidden, ksef.CodeInvoiceSend, "Sesja wsadowa %s została zamknięta w trakcie przesyłania", s.ID))
		return
	}
	old := s.parts[part.Ordinal]
	s.parts[part.Ordinal] = path
	e.mu.Unlock()
	if old != "" {
		os.Remove(old)
	}
	if hang {
		e.stats.fault("uploadHang")
		// Stored, but the answer comes late: a client that gave up cannot tell.
		e.cfg.Sleep(r.Context(), e.cfg.Faults.UploadHangFor)
	}
	w.WriteHeader(http.StatusCreated)
}

// receivePart streams a part to a file in the session's directory, checking its size and hash.
func (e *Emulator) receivePart(body io.Reader, sessionID string, part ksefapi.BatchPartInfo) (string, *apiError) {
	dir := filepath.Join(e.tempDir, "batch", sessionID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errf(http.StatusInternalServerError, ksef.CodeInvoiceSend, "Nie udało się zapisać części")
	}
	f, err := os.CreateTemp(dir, fmt.Sprintf("part-%d-*", part.Ordinal))
	if err != nil {
		return "", errf(http.StatusInternalServerError, ksef.CodeInvoiceSend, "Nie udało się zapisać części")
	}
	d := kcrypto.NewDigest()
	n, err := io.Copy(io.MultiWriter(f, d), io.LimitReader(body, part.PartSize+1))
	cerr := f.Close()
	var ae *apiError
	switch {
	case err != nil:
		ae = badRequest(ksef.CodeInvoiceInput, "Nie udało się odebrać części %d: %s", part.Ordinal, clip(err.Error(), 200))
	case cerr != nil:
		ae = errf(http.StatusInternalServerError, ksef.CodeInvoiceSend, "Nie udało się zapisać części %d", part.Ordinal)
	case n != part.PartSize:
		ae = badRequest(ksef.CodeInvoiceInput, "Część %d ma %s B, zadeklarowano %d B", part.Ordinal, sizeText(n, part.PartSize), part.PartSize)
	case d.Sum() != part.PartHash:
		ae = badRequest(ksef.CodeInvoiceInput, "Skrót SHA-256 części %d nie zgadza się z zadeklarowanym partHash", part.Ordinal)
	}
	if ae != nil {
		os.Remove(f.Name())
		return "", ae
	}
	return f.Name(), nil
}

func sizeText(n, declared int64) string {
	if n > declared {
		return "więcej niż " + strconv.FormatInt(declared, 10)
	}
	return strconv.FormatInt(n, 10)
}

// processBatch runs after a batch session is closed: it decrypts the parts in order into the
// package, checks the package's size and hash, unzips it and processes every invoice like an
// interactive one. A package-level failure ends the session with 405, 420, 430 or 435; an
// injected one (fail, non-zero) with its status, before anything is processed.
func (e *Emulator) processBatch(s *session, parts map[int32]string, fail int) {
	dir := filepath.Join(e.tempDir, "batch", s.ID)
	defer os.RemoveAll(dir)
	status, detail := fail, ""
	if fail != 0 {
		e.stats.fault("packageFail")
	} else {
		status, detail = e.unpackBatch(s, parts, dir)
	}
	e.mu.Lock()
	s.BatchDone, s.BatchStatus, s.BatchDetail, s.BatchEnded = true, status, detail, e.now()
	e.logSession(s)
	e.mu.Unlock()
}

func (e *Emulator) unpackBatch(s *session, parts map[int32]string, dir string) (int, string) {
	bi := s.BatchInfo
	for _, p := range bi.BatchParts {
		if parts[p.Ordinal] == "" {
			return sessionBadParts, fmt.Sprintf("Nie przesłano części %d", p.Ordinal)
		}
	}
	pkg, err := os.CreateTemp(dir, "package-*.zip")
	if err != nil {
		return int(ksef.StatusUnknown), "Nie udało się zapisać paczki"
	}
	defer pkg.Close()
	d := kcrypto.NewDigest()
	out := io.MultiWriter(pkg, d)
	for _, p := range bi.BatchParts {
		if err := decryptPart(out, parts[p.Ordinal], s.key, s.iv); err != nil {
			return sessionDecrypt, fmt.Sprintf("Nie udało się odszyfrować części %d", p.Ordinal)
		}
	}
	switch {
	case d.Size() != bi.BatchSize:
		return sessionBadParts, fmt.Sprintf("Rozmiar paczki po odszyfrowaniu (%d B) nie zgadza się z batchSize (%d B)", d.Size(), bi.BatchSize)
	case d.Sum() != bi.BatchHash:
		return sessionBadParts, "Skrót SHA-256 paczki nie zgadza się z batchHash"
	}
	zr, err := zip.NewReader(pkg, d.Size())
	if err != nil {
		return sessionUnzip, "Paczka nie jest poprawnym archiwum ZIP: " + clip(err.Error(), 200)
	}
	var files []*zip.File
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() {
			files = append(files, f)
		}
	}
	if len(files) > e.cfg.MaxInvoicesPerSession {
		return sessionTooMany, fmt.Sprintf("Paczka zawiera %d faktur, dopuszczalne %d", len(files), e.cfg.MaxInvoicesPerSession)
	}
	for _, f := range files {
		if e.ctx.Err() != nil {
			return int(ksef.StatusUnknown), "Przetwarzanie przerwane"
		}
		xml, rerr := readEntry(f, e.cfg.MaxInvoiceSize)
		e.mu.Lock()
		// A stuck batch's invoices are received when it shows its processing.
		inv := e.newInvoice(s, later(s.BatchDue, e.now()))
		e.mu.Unlock()
		switch {
		case rerr != nil:
			e.stats.sent("", "", "")
			e.finish(inv, outcome{status: ksef.StatusInvalid, details: fmt.Sprintf("Plik %s: %s", clip(f.Name, 100), rerr)})
		default:
			e.processInvoice(inv, xml, "", 0, false)
		}
	}
	return 0, ""
}

func decryptPart(w io.Writer, path string, key, iv []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := kcrypto.DecryptReader(f, key, iv)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// readEntry reads one invoice from the package, refusing more than max bytes however much
// the entry claims (a ZIP bomb stops at max).
func readEntry(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("nie udało się rozpakować: %s", clip(err.Error(), 200))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("nie udało się rozpakować: %s", clip(strings.TrimSpace(err.Error()), 200))
	case int64(len(b)) > max:
		return nil, fmt.Errorf("faktura przekracza %d B", max)
	}
	return b, nil
}
