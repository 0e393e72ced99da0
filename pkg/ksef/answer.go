package ksef

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ErrBadAnswer is wrapped by the error of a call whose 2xx answer is not what the API defines:
// an HTML page from a proxy, another content type, truncated or invalid JSON, a body over the
// client's bound. The same call may succeed later (a proxy's bad moment), so it is a failure to
// retry, never a result. For a send it also wraps ErrAmbiguous: a 2xx says KSeF took the
// request, but not under which id.
var ErrBadAnswer = errors.New("the answer is not the API's")

// ErrAnswerTooLarge is wrapped (with ErrBadAnswer) when an answer is larger than the client
// reads; the client stops reading at the bound instead of buffering the rest.
var ErrAnswerTooLarge = errors.New("the answer is larger than the client reads")

// AnswerError describes a 2xx answer the client refused. It holds the start of the body only.
type AnswerError struct {
	Operation   Operation
	HTTPStatus  int
	ContentType string
	Reason      string
	Body        string // the first 200 characters, whitespace collapsed
	Err         error  // the decoding error or ErrAnswerTooLarge; may be nil
	Ambiguous   bool   // the operation is not idempotent: the request may have taken effect
}

func (e *AnswerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ksef %s: HTTP %d", e.Operation, e.HTTPStatus)
	if e.ContentType != "" {
		fmt.Fprintf(&b, " (%s)", e.ContentType)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Unwrap makes errors.Is see ErrBadAnswer, the cause, and ErrAmbiguous for a send.
func (e *AnswerError) Unwrap() []error {
	errs := []error{ErrBadAnswer}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Ambiguous {
		errs = append(errs, ErrAmbiguous)
	}
	return errs
}

func badAnswer(op Operation, resp *http.Response, reason string, body []byte, err error) *AnswerError {
	return &AnswerError{
		Operation: op, HTTPStatus: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		Reason: reason, Body: snippet(body), Err: err, Ambiguous: !op.Idempotent(),
	}
}

// mediaType is the answer's media type in lower case, "" when absent or unparsable.
func mediaType(resp *http.Response) string {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// isJSON accepts application/json and +json types, and an answer without a Content-Type.
func isJSON(resp *http.Response) bool {
	if resp.Header.Get("Content-Type") == "" {
		return true
	}
	mt := mediaType(resp)
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// readBounded reads at most limit bytes of body; a longer body (or a Content-Length over limit,
// then nothing is read) is an error wrapping ErrAnswerTooLarge.
func readBounded(op Operation, resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, badAnswer(op, resp, fmt.Sprintf("Content-Length %d, more than %d", resp.ContentLength, limit), nil, ErrAnswerTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, badAnswer(op, resp, "reading the answer", body, err)
	}
	if int64(len(body)) > limit {
		return nil, badAnswer(op, resp, fmt.Sprintf("more than %d bytes", limit), body, ErrAnswerTooLarge)
	}
	return body, nil
}

// decodeAnswer checks a 2xx answer's media type and size, then decodes it as JSON into v.
func decodeAnswer(op Operation, resp *http.Response, limit int64, v any) error {
	if !isJSON(resp) {
		// Read a little, for the error: what the page said is often the only clue.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return badAnswer(op, resp, "not JSON", head, nil)
	}
	body, err := readBounded(op, resp, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badAnswer(op, resp, "decoding the answer", body, err)
	}
	return nil
}

// checkStream refuses a 2xx answer that should be a file (a result part, a UPO, an invoice) but
// is a page or an API message: what a proxy or a misrouted request answers with status 200.
func checkStream(op Operation, resp *http.Response) error {
	switch mt := mediaType(resp); {
	case mt == "text/html", mt == "application/json", strings.HasSuffix(mt, "+json"):
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return badAnswer(op, resp, "not a file", head, nil)
	}
	return nil
}
