// Package ksef is the client of the KSeF REST API 2.0: typed calls for its 16 operations, errors
// carrying the seed's codes, invoice status codes, KSeF numbers, request limits and sessions with
// real encryption. The wire types are generated from the contract in package ksefapi.
package ksef

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Limiter keeps calls under KSeF's request limits. The pipeline's implementation is shared by all
// replicas of a context; a nil Limiter does not limit.
type Limiter interface {
	// Wait blocks until a call of op may be made, or ctx ends.
	Wait(ctx context.Context, op Operation) error
	// Throttled tells the limiter that KSeF answered 429 to op and asked to wait retryAfter, so
	// that every caller of the context pauses, not only this one.
	Throttled(ctx context.Context, op Operation, retryAfter time.Duration)
}

// Call describes one HTTP attempt, for metrics and logs (it never holds tokens or bodies).
type Call struct {
	Operation  Operation
	Attempt    int // 1 for the first try
	HTTPStatus int // 0 when no answer came
	Duration   time.Duration
	Err        error
	Retrying   bool // another attempt follows
}

// RetryPolicy says how a call is repeated on network errors, 429 and 5xx. 4xx are never repeated.
type RetryPolicy struct {
	MaxAttempts int           // including the first; 1 disables retries (zero fields take the defaults)
	BaseDelay   time.Duration // first backoff; doubles each attempt, with full jitter
	MaxDelay    time.Duration // cap of one backoff
	// MaxRetryAfter is the longest Retry-After the client waits out itself; a longer one is returned
	// to the caller as the *Error, so that a worker can reschedule instead of blocking.
	MaxRetryAfter time.Duration
}

// withDefaults fills the zero fields of p from DefaultRetryPolicy, so that a policy that only
// sets MaxAttempts still waits out a short Retry-After.
func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// DefaultRetryPolicy is what New uses.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, MaxRetryAfter: 30 * time.Second}
}

// Client calls the KSeF REST API 2.0. It is safe for concurrent use.
type Client struct {
	raw      *ksefapi.Client
	token    string
	retry    RetryPolicy
	limiter  Limiter
	observe  func(Call)
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	jitter   func(n int64) int64
	httpDoer ksefapi.HttpRequestDoer
	upload   UploadPolicy

	pubMu sync.Mutex
	pub   *rsa.PublicKey // cached KSeF public key
}

// Option configures a Client.
type Option func(*Client)

// WithToken sets the KSeF token sent as "Authorization: Bearer".
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (TLS settings, transport, timeouts).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpDoer = h } }

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithLimiter makes every call wait for the limiter first.
func WithLimiter(l Limiter) Option { return func(c *Client) { c.limiter = l } }

// WithObserver is called after every HTTP attempt.
func WithObserver(f func(Call)) Option { return func(c *Client) { c.observe = f } }

// WithClock replaces time.Now and the backoff sleep (tests).
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.now, c.sleep = now, sleep }
}

// New returns a client of the API at baseURL (for example http://127.0.0.1:8089).
func New(baseURL string, opts ...Option) (*Client, error) {
	c := &Client{
		retry:    DefaultRetryPolicy(),
		now:      time.Now,
		sleep:    Sleep,
		jitter:   rand.Int64N,
		httpDoer: &http.Client{Timeout: 2 * time.Minute},
	}
	for _, o := range opts {
		o(c)
	}
	c.retry = c.retry.withDefaults()
	raw, err := ksefapi.NewClient(baseURL, ksefapi.WithHTTPClient(c.httpDoer), ksefapi.WithRequestEditorFn(c.authorize))
	if err != nil {
		return nil, fmt.Errorf("ksef: client for %q: %w", baseURL, err)
	}
	c.raw = raw
	return c, nil
}

// String never shows the token.
func (c *Client) String() string { return "ksef.Client(" + c.raw.Server + ")" }

func (c *Client) authorize(_ context.Context, req *http.Request) error {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return nil
}

// Sleep waits d or until ctx ends (then it returns ctx's error); d <= 0 does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is the delay before attempt n+1 (n >= 1): full jitter over an exponential cap.
func (c *Client) backoff(n int) time.Duration {
	d := c.retry.BaseDelay << min(n-1, 20)
	if d <= 0 || d > c.retry.MaxDelay {
		d = c.retry.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(c.jitter(int64(d)) + 1)
}

// do runs one operation with limiting and retries and returns a 2xx response whose body the
// caller must close. send is called once per attempt and must build a fresh request each time.
func (c *Client) do(ctx context.Context, op Operation, send func(ctx context.Context) (*http.Response, error)) (*http.Response, error) {
	return c.doAttempts(ctx, op, c.retry.MaxAttempts, send)
}

func (c *Client) doAttempts(ctx context.Context, op Operation, maxAttempts int, send func(ctx context.Context) (*http.Response, error)) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			// Nothing is sent with an ended context: not ambiguous.
			return nil, fmt.Errorf("ksef %s: %w", op, err)
		}
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx, op); err != nil {
				return nil, fmt.Errorf("ksef %s: waiting for the request limit: %w", op, err)
			}
		}
		start := c.now()
		resp, err := send(ctx)
		call := Call{Operation: op, Attempt: attempt, Duration: c.now().Sub(start)}
		var wait time.Duration
		var retErr error
		switch {
		case errors.Is(err, ErrSessionForgotten):
			// A send's body could not be made (its session's key is gone), so this attempt sent
			// nothing; a send is only repeated after a 429, which KSeF did not process either.
			retErr = fmt.Errorf("ksef %s: %w", op, err)
			call.Err = retErr
			c.emit(call)
			return nil, retErr
		case err != nil:
			if ctx.Err() != nil {
				// The context cut the attempt short, possibly after the request reached KSeF:
				// for a send that is a timeout like any other, so the outcome is unknown.
				retErr = fmt.Errorf("ksef %s: %w", op, ctx.Err())
				if !op.Idempotent() {
					retErr = fmt.Errorf("ksef %s: %w: %w", op, ErrAmbiguous, ctx.Err())
				}
				call.Err = retErr
				c.emit(call)
				return nil, retErr
			}
			retErr = fmt.Errorf("ksef %s: %w", op, err)
			if !op.Idempotent() {
				retErr = fmt.Errorf("ksef %s: %w: %w", op, ErrAmbiguous, err)
			}
			wait = c.backoff(attempt)
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			call.HTTPStatus = resp.StatusCode
			c.emit(call)
			return resp, nil
		default:
			call.HTTPStatus = resp.StatusCode
			e := errorFromResponse(op, resp, c.now())
			resp.Body.Close()
			retErr = e
			switch {
			case e.Temporary():
				if e.TooManyRequests() {
					// Not processed: always safe to repeat, after the time KSeF asked for.
					if c.limiter != nil {
						c.limiter.Throttled(ctx, op, e.RetryAfter)
					}
				} else {
					e.Ambiguous = !op.Idempotent()
				}
				if e.RetryAfter > c.retry.MaxRetryAfter {
					// A 429 or a 503 (a query in preparation) asking for a longer wait than the
					// client blocks for: the caller reschedules.
					call.Err = e
					c.emit(call)
					return nil, e
				}
				wait = max(e.RetryAfter, c.backoff(attempt))
			default:
				call.Err = e
				c.emit(call)
				return nil, e
			}
		}
		call.Err = retErr
		// A non-idempotent call with an unknown outcome is never repeated here.
		call.Retrying = attempt < maxAttempts && !errors.Is(retErr, ErrAmbiguous)
		c.emit(call)
		if !call.Retrying {
			return nil, retErr
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("ksef %s: %w (last error: %w)", op, err, retErr)
		}
	}
}

func (c *Client) emit(call Call) {
	if c.observe != nil {
		c.observe(call)
	}
}

// maxJSONBody bounds JSON answers; none of the API's JSON answers comes near it (a session's
// 10,000 invoice statuses are a few MB). A longer answer fails with ErrAnswerTooLarge.
const maxJSONBody = 16 << 20

// decodeJSON decodes a 2xx JSON answer; anything else (a page, truncated JSON, too large) is an
// *AnswerError.
func decodeJSON[T any](op Operation, resp *http.Response, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v T
	if err := decodeAnswer(op, resp, maxJSONBody, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// PublicKey returns the KSeF public key that wraps session keys.
func (c *Client) PublicKey(ctx context.Context) (*ksefapi.KsefPublicKeyResponse, error) {
	resp, err := c.do(ctx, OpPublicKey, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefPublicKey(ctx) })
	return decodeJSON[ksefapi.KsefPublicKeyResponse](OpPublicKey, resp, err)
}

// OpenOnlineSession opens an interactive session (see also OpenSession, which does the crypto).
func (c *Client) OpenOnlineSession(ctx context.Context, req ksefapi.KsefSessionOpenOnlineRequest) (*ksefapi.KsefSessionOpenOnlineResponse, error) {
	resp, err := c.do(ctx, OpSessionOpenOnline, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionOpenOnline(ctx, req) })
	return decodeJSON[ksefapi.KsefSessionOpenOnlineResponse](OpSessionOpenOnline, resp, err)
}

// OpenBatchSession opens a batch session; the answer says where to upload each part.
func (c *Client) OpenBatchSession(ctx context.Context, req ksefapi.KsefSessionOpenBatchRequest) (*ksefapi.KsefSessionOpenBatchResponse, error) {
	resp, err := c.do(ctx, OpSessionOpenBatch, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionOpenBatch(ctx, req) })
	return decodeJSON[ksefapi.KsefSessionOpenBatchResponse](OpSessionOpenBatch, resp, err)
}

// SessionStatus returns the session's state and invoice counts.
func (c *Client) SessionStatus(ctx context.Context, sessionID string) (*ksefapi.SessionInfo, error) {
	resp, err := c.do(ctx, OpSessionStatus, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionStatus(ctx, sessionID) })
	r, err := decodeJSON[ksefapi.KsefSessionStatusResponse](OpSessionStatus, resp, err)
	if err != nil {
		return nil, err
	}
	return &r.SessionInfo, nil
}

// CloseSession closes an online or batch session; it reports the service's result flag.
func (c *Client) CloseSession(ctx context.Context, sessionID string) (bool, error) {
	resp, err := c.do(ctx, OpSessionClose, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionClose(ctx, sessionID) })
	r, err := decodeJSON[ksefapi.KsefSessionCloseResponse](OpSessionClose, resp, err)
	if err != nil {
		return false, err
	}
	return r.Result, nil
}

// SessionUPO returns the UPO XML of a closed session; the caller closes it and bounds what it
// reads. Before the UPO exists the error has code CodeSessionNoUPO; an HTML or JSON answer with
// status 200 is an *AnswerError.
func (c *Client) SessionUPO(ctx context.Context, sessionID string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, OpSessionUpo, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionUpo(ctx, sessionID) })
	if err != nil {
		return nil, err
	}
	if err := checkStream(OpSessionUpo, resp); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// SessionInvoices returns the status of every invoice of a session.
func (c *Client) SessionInvoices(ctx context.Context, sessionID string) ([]ksefapi.InvoiceInfo, error) {
	resp, err := c.do(ctx, OpSessionInvoices, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefSessionInvoices(ctx, sessionID) })
	r, err := decodeJSON[ksefapi.KsefSessionInvoicesResponse](OpSessionInvoices, resp, err)
	if err != nil {
		return nil, err
	}
	return r.Invoices, nil
}

// SendInvoice sends one encrypted invoice (see Session.Send, which encrypts). It is never repeated
// after an unknown outcome: such errors wrap ErrAmbiguous.
func (c *Client) SendInvoice(ctx context.Context, req ksefapi.KsefInvoiceSendRequest) (*ksefapi.KsefInvoiceSendResponse, error) {
	resp, err := c.do(ctx, OpInvoiceSend, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceSend(ctx, req) })
	return decodeJSON[ksefapi.KsefInvoiceSendResponse](OpInvoiceSend, resp, err)
}

// InvoiceStatus returns the processing status of a sent invoice.
func (c *Client) InvoiceStatus(ctx context.Context, invoiceID string) (*ksefapi.InvoiceInfo, error) {
	resp, err := c.do(ctx, OpInvoiceStatus, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceStatus(ctx, invoiceID) })
	r, err := decodeJSON[ksefapi.KsefInvoiceStatusResponse](OpInvoiceStatus, resp, err)
	if err != nil {
		return nil, err
	}
	if len(r.Invoices) == 0 {
		return nil, fmt.Errorf("ksef %s: the answer lists no invoice", OpInvoiceStatus)
	}
	return &r.Invoices[0], nil
}

// GetInvoice returns one invoice by KSeF number and its media type (text/xml, or
// application/octet-stream when encrypted); the caller closes the body.
func (c *Client) GetInvoice(ctx context.Context, ksefNumber string) (io.ReadCloser, string, error) {
	resp, err := c.do(ctx, OpInvoiceGet, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceGet(ctx, ksefNumber) })
	if err != nil {
		return nil, "", err
	}
	if err := checkStream(OpInvoiceGet, resp); err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

// StartQuery starts an invoice query and returns its id.
func (c *Client) StartQuery(ctx context.Context, req ksefapi.KsefInvoiceQueryStartRequest) (string, error) {
	resp, err := c.do(ctx, OpInvoiceQueryStart, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceQueryStart(ctx, req) })
	r, err := decodeJSON[ksefapi.KsefInvoiceQueryStartResponse](OpInvoiceQueryStart, resp, err)
	if err != nil {
		return "", err
	}
	return r.QueryId, nil
}

// QueryStatus returns the state of a query and its part numbers.
func (c *Client) QueryStatus(ctx context.Context, queryID string) (*ksefapi.KsefInvoiceQueryStatusResponse, error) {
	resp, err := c.do(ctx, OpInvoiceQueryStatus, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceQueryStatus(ctx, queryID) })
	return decodeJSON[ksefapi.KsefInvoiceQueryStatusResponse](OpInvoiceQueryStatus, resp, err)
}

// QueryResult streams one encrypted result part; the caller closes it and bounds what it reads
// (by the query's packageSize). Decrypt it with the key of the query's encryptionInfo, then
// unzip. An HTML or JSON answer with status 200 is an *AnswerError.
func (c *Client) QueryResult(ctx context.Context, queryID, partNumber string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, OpInvoiceQueryResult, func(ctx context.Context) (*http.Response, error) {
		return c.raw.KsefInvoiceQueryResult(ctx, queryID, partNumber)
	})
	if err != nil {
		return nil, err
	}
	if err := checkStream(OpInvoiceQueryResult, resp); err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// GenerateInvoice builds FA(3) XML from structured data.
func (c *Client) GenerateInvoice(ctx context.Context, req ksefapi.KsefInvoiceGenerateRequest) (*ksefapi.KsefInvoiceGenerateResponse, error) {
	resp, err := c.do(ctx, OpInvoiceGenerate, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceGenerate(ctx, req) })
	return decodeJSON[ksefapi.KsefInvoiceGenerateResponse](OpInvoiceGenerate, resp, err)
}

// ValidateInvoice validates invoice XML; a schema violation is an *Error with code
// CodeInvoiceFormat and the first error in Details.
func (c *Client) ValidateInvoice(ctx context.Context, xml []byte) (*ksefapi.KsefInvoiceValidateResponse, error) {
	resp, err := c.do(ctx, OpInvoiceValidate, func(ctx context.Context) (*http.Response, error) {
		return c.raw.KsefInvoiceValidateWithBody(ctx, "text/xml", bytes.NewReader(xml))
	})
	return decodeJSON[ksefapi.KsefInvoiceValidateResponse](OpInvoiceValidate, resp, err)
}

// VisualizeInvoice renders an invoice; it returns the body (PDF or HTML) and its media type.
func (c *Client) VisualizeInvoice(ctx context.Context, req ksefapi.KsefInvoiceVisualizeRequest) (io.ReadCloser, string, error) {
	resp, err := c.do(ctx, OpInvoiceVisualize, func(ctx context.Context) (*http.Response, error) { return c.raw.KsefInvoiceVisualize(ctx, req) })
	if err != nil {
		return nil, "", err
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

// UploadBatchPart uploads one encrypted batch part as ksefSessionOpenBatch said. The body is
// repeated on a retry only when it is an io.ReadSeeker; otherwise a failed upload is returned.
// The request must be a PUT to an allowed scheme and host (see UploadPolicy), else nothing is
// sent and the error wraps ErrUploadTarget.
func (c *Client) UploadBatchPart(ctx context.Context, info ksefapi.PartUploadInfo, body io.Reader, size int64) error {
	if err := c.checkUpload(info); err != nil {
		return fmt.Errorf("ksef %s: %w", OpBatchPartUpload, err)
	}
	seeker, canRewind := body.(io.ReadSeeker)
	attempts := c.retry.MaxAttempts
	if !canRewind {
		attempts = 1
	}
	first := true
	resp, err := c.doAttempts(ctx, OpBatchPartUpload, attempts, func(ctx context.Context) (*http.Response, error) {
		if !first {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
		}
		first = false
		req, err := http.NewRequestWithContext(ctx, info.Method, info.Url, io.NopCloser(body))
		if err != nil {
			return nil, err
		}
		req.ContentLength = size
		for _, h := range info.Headers {
			req.Header.Set(h.Name, h.Value)
		}
		return c.httpDoer.Do(req)
	})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Body.Close()
}
