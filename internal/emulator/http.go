package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// opPatterns maps the ServeMux patterns the generated router registers to operations.
var opPatterns = map[string]ksef.Operation{
	"GET /v2/public-key":                           ksef.OpPublicKey,
	"GET /v2/sessions/{sessionId}":                 ksef.OpSessionStatus,
	"GET /v2/sessions/{sessionId}/close":           ksef.OpSessionClose,
	"GET /v2/sessions/{sessionId}/upo":             ksef.OpSessionUpo,
	"GET /v2/sessions/{sessionId}/invoices":        ksef.OpSessionInvoices,
	"GET /v2/invoices/status/{invoiceId}":          ksef.OpInvoiceStatus,
	"GET /v2/invoices/ksef/{invoiceKsefNumber}":    ksef.OpInvoiceGet,
	"GET /v2/queries/{queryId}":                    ksef.OpInvoiceQueryStatus,
	"GET /v2/queries/{queryId}/parts/{partNumber}": ksef.OpInvoiceQueryResult,
	"POST /v2/sessions/online":                     ksef.OpSessionOpenOnline,
	"POST /v2/sessions/batch":                      ksef.OpSessionOpenBatch,
	"POST /v2/invoices/send":                       ksef.OpInvoiceSend,
	"POST /v2/invoices/generate":                   ksef.OpInvoiceGenerate,
	"POST /v2/invoices/validate":                   ksef.OpInvoiceValidate,
	"POST /v2/queries":                             ksef.OpInvoiceQueryStart,
	"POST /v2/invoices/visualize":                  ksef.OpInvoiceVisualize,
}

// uploadPattern is where batch parts are uploaded (the URLs ksefSessionOpenBatch hands out).
const uploadPattern = "PUT /upload/{sessionId}/{ordinal}"

// UploadTokenHeader carries the per-session upload token of batch part uploads.
const UploadTokenHeader = "X-KSeF-Upload-Token"

type ctxKey struct{}

// reqInfo is filled in as a request passes the middleware, and read by handlers and stats.
type reqInfo struct {
	op      ksef.Operation
	p       principal
	baseURL string
}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(ctxKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

func (e *Emulator) buildHandler() http.Handler {
	mux := http.NewServeMux()
	strict := ksefapi.NewStrictHandlerWithOptions(&api{e}, nil, ksefapi.StrictHTTPServerOptions{
		RequestErrorHandlerFunc:  e.requestError,
		ResponseErrorHandlerFunc: e.responseError,
	})
	ksefapi.HandlerWithOptions(strict, ksefapi.StdHTTPServerOptions{
		BaseRouter:       mux,
		Middlewares:      []ksefapi.MiddlewareFunc{e.apiMiddleware},
		ErrorHandlerFunc: e.paramError,
	})
	mux.Handle(uploadPattern, e.uploadMiddleware(http.HandlerFunc(e.handleUpload)))
	mux.HandleFunc("GET /emulator/stats", e.handleStats)
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(ksefapi.Spec)
	})
	mux.HandleFunc("GET /docs", e.handleDocs)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/docs", http.StatusFound)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorBody(w, http.StatusNotFound, ksefapi.Error{Code: "404", Description: "Not Found"}, 0)
	})
	return e.outer(mux)
}

// outer records every answer in the stats and turns a panic into a 500 Error.
func (e *Emulator) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{baseURL: e.baseURL(r)}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				e.log.Error().Str("op", string(ri.op)).Interface("panic", v).Bytes("stack", debug.Stack()).Msg("handler panicked")
				if !sw.wrote {
					writeError(sw, errf(http.StatusInternalServerError, failureCode(ri.op), "Wewnętrzny błąd emulatora"))
				}
				e.stats.panic()
			}
			if ri.op != "" {
				e.stats.record(ri.op, sw.statusCode())
			}
			e.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("op", string(ri.op)).
				Str("context", ri.p.nip).Int("status", sw.statusCode()).Dur("took", time.Since(start)).Msg("request")
		}()
		next.ServeHTTP(sw, r)
	})
}

func (e *Emulator) baseURL(r *http.Request) string {
	if e.cfg.BaseURL != "" {
		return strings.TrimSuffix(e.cfg.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// apiMiddleware runs, in order, the injected infrastructure faults, authentication, the
// request limits, the body size limit of each API operation and the hostile answers.
func (e *Emulator) apiMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		op := opPatterns[r.Pattern]
		ri.op = op
		if e.injectFault(w, r, op) {
			return
		}
		if op != ksef.OpPublicKey {
			p, err := e.authenticate(r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ksef-emulator"`)
				writeError(w, err)
				return
			}
			ri.p = p
			if err := e.checkLimit(ri.p.nip, e.limitClass(r, op)); err != nil {
				writeError(w, err)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, e.bodyLimit(op))
		// Hostile answers are per context: the public key (no token) never gets one.
		if h := e.faults.hostile(ri.p.nip, op, false); h != "" {
			e.stats.fault("hostile")
			e.serveHostile(w, r, h, next)
			return
		}
		if op == ksef.OpInvoiceSend || op == ksef.OpSessionClose {
			if ok, form := e.faults.ambiguous(); ok && e.faults.applies(op) {
				// The request takes effect; the answer is lost on the way back.
				rec := &bufferedWriter{header: make(http.Header)}
				next.ServeHTTP(rec, r)
				if rec.status == 0 || rec.status == http.StatusOK {
					e.stats.fault("ambiguous")
					e.writeServerError(w, op, form)
					return
				}
				rec.copyTo(w)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// uploadMiddleware is apiMiddleware for batch part uploads: no bearer token (the upload token
// travels in its own header) and no request limits, as in KSeF.
func (e *Emulator) uploadMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoFrom(r.Context())
		ri.op = ksef.OpBatchPartUpload
		if e.injectFault(w, r, ri.op) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Emulator) authenticate(r *http.Request) (principal, *apiError) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, errf(http.StatusUnauthorized, ksef.CodeAuthChallenge, "Brak nagłówka Authorization: Bearer <token>")
	}
	p, found := e.tokens[strings.TrimSpace(tok)]
	if !found {
		return principal{}, errf(http.StatusUnauthorized, ksef.CodeAuthChallenge, "Nieznany lub nieważny token")
	}
	return p, nil
}

// bodyLimit is the largest request body of each operation: enough for the largest invoice
// the emulator accepts in the operation's encoding, so bigger bodies get 413.
func (e *Emulator) bodyLimit(op ksef.Operation) int64 {
	inv := e.cfg.MaxInvoiceSize
	switch op {
	case ksef.OpInvoiceSend:
		return kcrypto.EncryptedSize(inv)*4/3 + 64<<10
	case ksef.OpInvoiceValidate:
		return inv
	case ksef.OpInvoiceVisualize:
		return 6*inv + 64<<10 // JSON may escape every character as \u00XX
	case ksef.OpInvoiceGenerate:
		return 16 << 20
	}
	return 1 << 20
}

// requestError answers requests the generated code could not decode.
func (e *Emulator) requestError(w http.ResponseWriter, r *http.Request, err error) {
	op := infoFrom(r.Context()).op
	var (
		tooBig  *http.MaxBytesError
		corrupt base64.CorruptInputError
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		writeError(w, errf(http.StatusRequestEntityTooLarge, tooLargeCode(op), "Treść żądania przekracza %d bajtów", tooBig.Limit))
	case errors.As(err, &corrupt):
		writeError(w, badRequest(ksef.CodeB64Decode, "Nieprawidłowe kodowanie base64 (bajt %d)", int64(corrupt)))
	case errors.Is(err, io.EOF):
		writeError(w, badRequest(inputCode(op), "Brak treści żądania"))
	case errors.As(err, &syntax):
		writeError(w, badRequest(inputCode(op), "Nieprawidłowy JSON (bajt %d): %s", syntax.Offset, syntax.Error()))
	case errors.As(err, &typ):
		writeError(w, badRequest(inputCode(op), "Nieprawidłowy typ pola %q: oczekiwano %s, otrzymano %s", typ.Field, typ.Type, typ.Value))
	default:
		writeError(w, badRequest(inputCode(op), "Nieprawidłowe żądanie: %s", clip(err.Error(), 300)))
	}
}

// paramError answers path parameters the generated code could not bind.
func (e *Emulator) paramError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, badRequest(inputCode(infoFrom(r.Context()).op), "Nieprawidłowy parametr: %s", clip(err.Error(), 300)))
}

// responseError writes the errors handlers return; anything but an *apiError is a bug or a
// failed write, answered 500 when nothing was written yet.
func (e *Emulator) responseError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae)
		return
	}
	op := infoFrom(r.Context()).op
	e.log.Error().Err(err).Str("op", string(op)).Msg("answering")
	if sw, ok := w.(*statusWriter); ok && sw.wrote {
		return
	}
	writeError(w, errf(http.StatusInternalServerError, failureCode(op), "Wewnętrzny błąd emulatora"))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) statusCode() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferedWriter holds an answer back so that it can be replaced by an injected 5xx.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
