package ksef

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// fuzzNow is the clock of the fuzz targets (Retry-After dates are measured against it).
var fuzzNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func fuzzResponse(status int, retryAfter string, body []byte) *http.Response {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body))}
}

// FuzzErrorFromResponse feeds arbitrary failed answers (status, Retry-After, body) to the reader
// of KSeF errors: the API's JSON Error, the proxies' HTML pages, empty bodies, garbage. It must
// never panic, must keep the status, never wait a negative time, and keep a bounded snippet of a
// body that was not the Error model.
func FuzzErrorFromResponse(f *testing.F) {
	f.Add(400, "", []byte(`{"code":"21405","description":"Błąd walidacji danych wejściowych.","details":"invoiceHash"}`))
	f.Add(429, "3", []byte(`{"code":"429","description":"Przekroczono limit żądań."}`))
	f.Add(429, "Wed, 25 Nov 2026 10:00:30 GMT", []byte{})
	f.Add(502, "", []byte("<html>\r\n<head><title>502 Bad Gateway</title></head></html>"))
	f.Add(503, "1", []byte{})
	f.Add(500, "", []byte(`{"code":"x","description":""}`))
	f.Add(404, "-5", []byte(`{"code": 21304}`))
	f.Add(503, "99999999999", []byte("\xff\xfe"))
	// Values that overflowed time.Duration into a short (290ms) or negative wait.
	f.Add(429, "18446744074", []byte{})
	f.Add(429, "9223372036854775807", []byte{})
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		status = 400 + (status%200+200)%200 // a failed answer: 400..599
		e := errorFromResponse(OpInvoiceStatus, fuzzResponse(status, retryAfter, body), fuzzNow)
		if e.HTTPStatus != status {
			t.Fatalf("status %d read as %d", status, e.HTTPStatus)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("Retry-After %q read as %v", retryAfter, e.RetryAfter)
		}
		if e.Error() == "" || !strings.Contains(e.Error(), "HTTP") {
			t.Fatalf("error text %q", e.Error())
		}
		if len(e.Body) > 200+len("…") {
			t.Fatalf("a snippet of %d bytes", len(e.Body))
		}
		if utf8.Valid(body) && !utf8.ValidString(e.Body) {
			t.Fatalf("a valid UTF-8 body cut into invalid UTF-8: %q", e.Body)
		}
		if e.Temporary() != (status == 429 || status == 408 || status >= 500) {
			t.Fatalf("status %d: temporary %v", status, e.Temporary())
		}
	})
}

// FuzzDecodeStatus feeds arbitrary bodies of successful answers to the decoding of the status
// answers the workers branch on (invoice, session and query status): never a panic, and a status
// that decodes can be classified.
func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"ordinalNumber":1,"invoiceNumber":"FV/1","ksefNumber":"5265877635-20250826-0100001AF629-AF","referenceNumber":"x","invoiceHash":"h","acquisitionDate":"2026-11-25T10:00:00Z","status":{"code":200,"description":"Sukces"}}`))
	f.Add([]byte(`{"status":{"code":440,"description":"Duplikat faktury","extensions":[{"key":"originalKsefNumber","value":"x"}]}}`))
	f.Add([]byte(`{"status":{"code":150,"description":"Trwa przetwarzanie"}}`))
	f.Add([]byte(`{"status":{"code":200},"sessionStatus":"Closed","invoiceCount":3,"successfulInvoiceCount":3}`))
	f.Add([]byte(`{"status":{"code":200},"package":{"parts":[{"partNumber":1}]},"isTruncated":false}`))
	f.Add([]byte(`{"status":{"code":1e400}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := func() *http.Response { return fuzzResponse(200, "", body) }
		if info, err := decodeJSON[ksefapi.InvoiceInfo](OpInvoiceStatus, resp(), nil); err == nil {
			c := StatusCode(info.Status.Code)
			_ = c.Final() && c.Accepted() && c.Retryable()
		} else if !strings.Contains(err.Error(), string(OpInvoiceStatus)) {
			t.Fatalf("error %v does not name the operation", err)
		}
		if info, err := decodeJSON[ksefapi.SessionInfo](OpSessionStatus, resp(), nil); err == nil {
			_ = StatusCode(info.Status.Code).Final()
		}
		if _, err := decodeJSON[ksefapi.KsefInvoiceQueryStatusResponse](OpInvoiceQueryStatus, resp(), nil); err != nil &&
			!strings.Contains(err.Error(), "decoding") {
			t.Fatalf("error %v", err)
		}
	})
}
