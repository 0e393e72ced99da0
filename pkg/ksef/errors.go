package ksef

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// ErrAmbiguous is wrapped by errors of a non-idempotent call (sending an invoice) whose outcome is
// unknown: the request may have taken effect although the answer was a 5xx, a timeout or a broken
// connection. The caller must find out (ksefSessionInvoices, or a 440 on a later send) before
// treating it as failed.
var ErrAmbiguous = errors.New("outcome unknown: the request may have taken effect")

// Error is a failed call to the KSeF API: an HTTP status and, when the body was the API's Error
// model, its code, description and details. Branch on it with errors.As.
type Error struct {
	Operation   Operation
	HTTPStatus  int
	Code        Code // 0 when the body carried no numeric code (e.g. an HTML page from a proxy)
	Description string
	Details     string
	// RetryAfter is the server's Retry-After (429, 503), zero when absent.
	RetryAfter time.Duration
	// Body is the start of a body that was not the Error model (HTML error pages, empty 403s).
	Body string
	// Ambiguous is set when the request was not idempotent and may have taken effect.
	Ambiguous bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ksef %s: HTTP %d", e.Operation, e.HTTPStatus)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
		if n := e.Code.Name(); n != "" {
			fmt.Fprintf(&b, " %s", n)
		}
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Details != "" {
		fmt.Fprintf(&b, " (%s)", e.Details)
	}
	if e.Body != "" && e.Description == "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrAmbiguous) true for ambiguous errors.
func (e *Error) Is(target error) bool { return target == ErrAmbiguous && e.Ambiguous }

// Temporary reports whether the same request may succeed later: 429, 5xx, and 408.
func (e *Error) Temporary() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus == http.StatusRequestTimeout || e.HTTPStatus >= 500
}

// TooManyRequests reports whether KSeF refused the call because of its request limits.
func (e *Error) TooManyRequests() bool { return e.HTTPStatus == http.StatusTooManyRequests }

// HasCode reports whether err is (or wraps) an *Error with the given code.
func HasCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// errorFromResponse reads a non-2xx response into an *Error. It does not assume a JSON body:
// the infrastructure in front of KSeF answers with HTML pages and empty bodies (in-practice.md).
func errorFromResponse(op Operation, resp *http.Response, now time.Time) *Error {
	e := &Error{Operation: op, HTTPStatus: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var m ksefapi.Error
	if err := json.Unmarshal(body, &m); err == nil && (m.Code != "" || m.Description != "") {
		if n, err := strconv.Atoi(strings.TrimSpace(m.Code)); err == nil {
			e.Code = Code(n)
		}
		e.Description = m.Description
		if m.Details != nil {
			e.Details = *m.Details
		}
		return e
	}
	e.Body = snippet(body)
	return e
}

func snippet(b []byte) string {
	const n = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		// Clamped: a huge value must not overflow into a short or negative wait.
		return time.Duration(min(s, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
