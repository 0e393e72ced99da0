package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// apiError is an answer with the spec's Error model. Handlers return it as their error; the
// strict server's ResponseErrorHandlerFunc writes it.
type apiError struct {
	status     int
	code       ksef.Code
	details    string
	retryAfter time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d, code %d: %s", e.status, e.code, e.details)
}

func (e *apiError) body() ksefapi.Error {
	out := ksefapi.Error{Code: e.code.String(), Description: e.code.Description()}
	if e.details != "" {
		d := e.details
		out.Details = &d
	}
	return out
}

func errf(status int, code ksef.Code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, details: fmt.Sprintf(format, args...)}
}

// badRequest, notFound and forbidden are the common cases.
func badRequest(code ksef.Code, format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, code, format, args...)
}

func notFound(code ksef.Code, format string, args ...any) *apiError {
	return errf(http.StatusNotFound, code, format, args...)
}

// writeError writes e as JSON, with Retry-After when it has one.
func writeError(w http.ResponseWriter, e *apiError) {
	writeErrorBody(w, e.status, e.body(), e.retryAfter)
}

func writeErrorBody(w http.ResponseWriter, status int, body ksefapi.Error, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(retryAfter)))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// retryAfterSeconds rounds up: answering less than the real wait would earn another 429.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// failureCode is the seed's "could not do it" code of each operation, used for 5xx answers
// (panics, injected faults). Operations without one of their own use INVOICE_SEND.
func failureCode(op ksef.Operation) ksef.Code {
	switch op {
	case ksef.OpPublicKey:
		return ksef.CodeKsefPublicKey
	case ksef.OpSessionOpenOnline, ksef.OpSessionOpenBatch:
		return ksef.CodeSessionOpen
	case ksef.OpSessionStatus, ksef.OpSessionInvoices:
		return ksef.CodeSessionStatus
	case ksef.OpSessionClose:
		return ksef.CodeSessionClose
	case ksef.OpSessionUpo:
		return ksef.CodeSessionUPO
	case ksef.OpInvoiceStatus:
		return ksef.CodeInvoiceStatus
	case ksef.OpInvoiceQueryStart:
		return ksef.CodeQueryInit
	case ksef.OpInvoiceQueryStatus:
		return ksef.CodeQueryStatus
	case ksef.OpInvoiceQueryResult:
		return ksef.CodeQueryResult
	case ksef.OpInvoiceVisualize:
		return ksef.CodeInvoiceVisualize
	case ksef.OpInvoiceGenerate, ksef.OpInvoiceValidate:
		return ksef.CodeInvoiceFormat
	case ksef.OpInvoiceGet:
		return ksef.CodeInvoiceStatus
	}
	return ksef.CodeInvoiceSend
}

// inputCode is the code of a request the emulator cannot decode (malformed JSON, wrong types,
// missing required fields) for each operation.
func inputCode(op ksef.Operation) ksef.Code {
	switch op {
	case ksef.OpSessionOpenOnline, ksef.OpSessionOpenBatch:
		return ksef.CodeSessionInit
	case ksef.OpInvoiceQueryStart:
		return ksef.CodeQueryParams
	case ksef.OpInvoiceValidate:
		return ksef.CodeInvoiceFormat
	}
	return ksef.CodeInvoiceInput
}

// tooLargeCode is the code of a request body over the size limit.
func tooLargeCode(op ksef.Operation) ksef.Code {
	switch op {
	case ksef.OpInvoiceSend, ksef.OpInvoiceValidate, ksef.OpInvoiceVisualize, ksef.OpInvoiceGenerate, ksef.OpBatchPartUpload:
		return ksef.CodeInvoiceSize
	}
	return inputCode(op)
}
