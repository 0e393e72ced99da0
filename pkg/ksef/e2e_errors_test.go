package ksef_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// TestErrorCodes reaches every error code the API can answer a client with and checks that the
// typed client turns it into an *ksef.Error with the HTTP status, the seed's code and
// description, and the details.
func TestErrorCodes(t *testing.T) {
	h := startEmulator(t, nil)
	ctx := context.Background()
	a := h.client(t, tokA, noRetries)
	b := h.client(t, tokB, noRetries)
	anonymous := h.client(t, "", noRetries)
	stranger := h.client(t, "no-such-token", noRetries)

	// An open session of A, a closed one, an accepted invoice and a valid wrapped key.
	open, err := a.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := a.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	validXML := invoiceXML(t, nipA, nipB, "FV/E2E/ERR/1")
	closedReq, err := closed.SendRequest(validXML) // made while the key is known
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(ctx); err != nil {
		t.Fatal(err)
	}
	enc, key, err := a.NewEncryption(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key.Zero()
	shortKey, err := kcrypto.WrapKey(h.em.PublicKey(), make([]byte, 16)) // AES-128-sized
	if err != nil {
		t.Fatal(err)
	}
	garbageKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256)) // not an OAEP ciphertext
	shortIV := base64.StdEncoding.EncodeToString(make([]byte, 8))
	// An accepted invoice of A to B, which C may not see.
	acceptedID := sendReq(t, a, mustRequest(t, open, invoiceXML(t, nipA, nipB, "FV/E2E/ERR/OK")))
	acceptedNum := deref(awaitFinal(t, h, a, acceptedID).KsefNumber)
	awaitStored(t, h, a, acceptedID)
	c := h.client(t, tokC, noRetries)
	// A batch session of A waiting for its part.
	_, parts, uploads := openBatch(t, a, []string{"FV/E2E/ERR/BATCH"})
	spoiled := bytes.Clone(parts[0])
	spoiled[0] ^= 1
	noToken := uploads[0]
	noToken.Headers = nil
	upload := func(u ksefapi.PartUploadInfo, body []byte) func(context.Context) error {
		return func(ctx context.Context) error {
			return a.UploadBatchPart(ctx, u, bytes.NewReader(body), int64(len(body)))
		}
	}
	openBatchReq := func(bi ksefapi.BatchInfo) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := a.OpenBatchSession(ctx, ksefapi.KsefSessionOpenBatchRequest{InvoiceVersion: ksefapi.V3, EncryptionInfo: enc, BatchInfo: bi})
			return err
		}
	}
	hash := kcrypto.SHA256Base64([]byte("package"))
	openReq := func(v ksefapi.KsefInvoiceVersion, info ksefapi.EncryptionInfo) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := a.OpenOnlineSession(ctx, ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: v, EncryptionInfo: info})
			return err
		}
	}
	sendReq := func(mutate func(*ksefapi.KsefInvoiceSendRequest)) func(context.Context) error {
		return func(ctx context.Context) error {
			req, err := open.SendRequest(validXML)
			if err != nil {
				return err
			}
			mutate(&req)
			_, err = a.SendInvoice(ctx, req)
			return err
		}
	}
	query := func(c *ksef.Client, from, to time.Time, subject ksefapi.SubjectType, info ksefapi.EncryptionInfo) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.StartQuery(ctx, ksefapi.KsefInvoiceQueryStartRequest{
				Range: ksefapi.KsefInvoiceQueryStartRange{From: from, To: to}, EncryptionInfo: info, SubjectType: subject,
			})
			return err
		}
	}
	validate := func(xml []byte) func(context.Context) error {
		return func(ctx context.Context) error { _, err := a.ValidateInvoice(ctx, xml); return err }
	}
	now := time.Now()

	for _, tc := range []struct {
		name    string
		call    func(context.Context) error
		op      ksef.Operation
		status  int
		code    ksef.Code
		details string // a substring of Details, "" for any non-empty
	}{
		{"no token", func(ctx context.Context) error { _, err := anonymous.SessionStatus(ctx, open.ID); return err },
			ksef.OpSessionStatus, 401, ksef.CodeAuthChallenge, "Authorization"},
		{"unknown token", func(ctx context.Context) error { _, err := stranger.SessionStatus(ctx, open.ID); return err },
			ksef.OpSessionStatus, 401, ksef.CodeAuthChallenge, "token"},
		{"IV of 8 bytes", openReq(ksefapi.V3, ksefapi.EncryptionInfo{EncryptedKey: enc.EncryptedKey, InitVector: shortIV}),
			ksef.OpSessionOpenOnline, 400, ksef.CodeAESIVLength, "8"},
		{"AES-128 key", openReq(ksefapi.V3, ksefapi.EncryptionInfo{EncryptedKey: shortKey, InitVector: enc.InitVector}),
			ksef.OpSessionOpenOnline, 400, ksef.CodeAESKeyLength, "16"},
		{"encryptedKey not base64", openReq(ksefapi.V3, ksefapi.EncryptionInfo{EncryptedKey: "not base64!", InitVector: enc.InitVector}),
			ksef.OpSessionOpenOnline, 400, ksef.CodeB64Decode, "encryptedKey"},
		{"initVector not base64", openReq(ksefapi.V3, ksefapi.EncryptionInfo{EncryptedKey: enc.EncryptedKey, InitVector: "%%%"}),
			ksef.OpSessionOpenOnline, 400, ksef.CodeB64Decode, "initVector"},
		{"invoiceHash not base64", sendReq(func(r *ksefapi.KsefInvoiceSendRequest) { r.Encrypted.InvoiceHash = "#" }),
			ksef.OpInvoiceSend, 400, ksef.CodeB64Decode, "invoiceHash"},
		{"part without the upload token", upload(noToken, parts[0]),
			ksef.OpBatchPartUpload, 401, ksef.CodeAuthChallenge, emulator.UploadTokenHeader},
		{"key not wrapped with the KSeF key", openReq(ksefapi.V3, ksefapi.EncryptionInfo{EncryptedKey: garbageKey, InitVector: enc.InitVector}),
			ksef.OpSessionOpenOnline, 400, ksef.CodeSessionInit, ""},
		{"status of an unknown session", func(ctx context.Context) error { _, err := a.SessionStatus(ctx, "SO-nope"); return err },
			ksef.OpSessionStatus, 404, ksef.CodeSessionUnknown, "SO-nope"},
		{"close of an unknown session", func(ctx context.Context) error { _, err := a.CloseSession(ctx, "SO-nope"); return err },
			ksef.OpSessionClose, 404, ksef.CodeSessionUnknown, "SO-nope"},
		{"invoices of an unknown session", func(ctx context.Context) error { _, err := a.SessionInvoices(ctx, "SO-nope"); return err },
			ksef.OpSessionInvoices, 404, ksef.CodeSessionUnknown, "SO-nope"},
		{"UPO of an unknown session", func(ctx context.Context) error { _, err := a.SessionUPO(ctx, "SO-nope"); return err },
			ksef.OpSessionUpo, 404, ksef.CodeSessionUnknown, "SO-nope"},
		{"send into an unknown session", sendReq(func(r *ksefapi.KsefInvoiceSendRequest) { r.SessionId = "SO-nope" }),
			ksef.OpInvoiceSend, 404, ksef.CodeSessionUnknown, "SO-nope"},
		{"status of another context's session", func(ctx context.Context) error { _, err := b.SessionStatus(ctx, open.ID); return err },
			ksef.OpSessionStatus, 403, ksef.CodeSessionAccess, open.ID},
		{"close of another context's session", func(ctx context.Context) error { _, err := b.CloseSession(ctx, open.ID); return err },
			ksef.OpSessionClose, 403, ksef.CodeSessionAccess, open.ID},
		{"UPO before the session is closed", func(ctx context.Context) error { _, err := a.SessionUPO(ctx, open.ID); return err },
			ksef.OpSessionUpo, 400, ksef.CodeSessionNoUPO, open.ID},
		{"UPO of a session without accepted invoices", func(ctx context.Context) error { _, err := a.SessionUPO(ctx, closed.ID); return err },
			ksef.OpSessionUpo, 400, ksef.CodeSessionNoUPO, closed.ID},
		{"FA(2) session", openReq(ksefapi.V2, enc),
			ksef.OpSessionOpenOnline, 400, ksef.CodeInvoiceVersion, "v2"},
		{"FA(2) invoice validated", validate(sample(t, "invalid", "fa2-namespace.xml")),
			ksef.OpInvoiceValidate, 400, ksef.CodeInvoiceVersion, "FA(2)"},
		{"invoice declared over 1 MB", sendReq(func(r *ksefapi.KsefInvoiceSendRequest) { r.Encrypted.InvoiceSize = emulator.DefaultMaxInvoiceSize + 1 }),
			ksef.OpInvoiceSend, 400, ksef.CodeInvoiceSize, ""},
		{"batch package over 5 GB", openBatchReq(ksefapi.BatchInfo{BatchSize: 6_000_000_000, BatchHash: hash,
			BatchParts: []ksefapi.BatchPartInfo{{Ordinal: 1, PartSize: 16, PartHash: hash}}}),
			ksef.OpSessionOpenBatch, 400, ksef.CodeInvoiceSize, ""},
		{"batch parts not numbered from 1", openBatchReq(ksefapi.BatchInfo{BatchSize: 10, BatchHash: hash,
			BatchParts: []ksefapi.BatchPartInfo{{Ordinal: 2, PartSize: 16, PartHash: hash}}}),
			ksef.OpSessionOpenBatch, 400, ksef.CodeSessionInit, "ordinal 2"},
		{"validation body over 1 MB", validate(append([]byte("<a>"), bytes.Repeat([]byte("x"), emulator.DefaultMaxInvoiceSize)...)),
			ksef.OpInvoiceValidate, 413, ksef.CodeInvoiceSize, ""},
		{"invalid invoice validated", validate(sample(t, "invalid", "missing-invoice-number-p2.xml")),
			ksef.OpInvoiceValidate, 400, ksef.CodeInvoiceFormat, "P_2"},
		{"truncated invoice validated", validate(sample(t, "invalid", "truncated-not-well-formed.xml")),
			ksef.OpInvoiceValidate, 400, ksef.CodeInvoiceFormat, "Premature end"},
		{"send into a closed session", func(ctx context.Context) error { _, err := a.SendInvoice(ctx, closedReq); return err },
			ksef.OpInvoiceSend, 400, ksef.CodeInvoiceSend, closed.ID},
		{"status of an unknown invoice", func(ctx context.Context) error { _, err := a.InvoiceStatus(ctx, "EE-nope"); return err },
			ksef.OpInvoiceStatus, 404, ksef.CodeInvoiceUnknown, "EE-nope"},
		{"status of another context's invoice", func(ctx context.Context) error { _, err := b.InvoiceStatus(ctx, acceptedID); return err },
			ksef.OpInvoiceStatus, 404, ksef.CodeInvoiceUnknown, acceptedID},
		{"get of another context's invoice", func(ctx context.Context) error { _, _, err := c.GetInvoice(ctx, acceptedNum); return err },
			ksef.OpInvoiceGet, 404, ksef.CodeInvoiceUnknown, acceptedNum},
		{"part with another hash", upload(uploads[0], spoiled),
			ksef.OpBatchPartUpload, 400, ksef.CodeInvoiceInput, "SHA-256"},
		{"get by a malformed KSeF number", func(ctx context.Context) error { _, _, err := a.GetInvoice(ctx, "5261040828-20260302-123"); return err },
			ksef.OpInvoiceGet, 400, ksef.CodeInvoiceUnknown, ""},
		{"get by an unknown KSeF number", func(ctx context.Context) error {
			_, _, err := a.GetInvoice(ctx, ksef.NewNumber(nipA, now, 0xABCDEF))
			return err
		}, ksef.OpInvoiceGet, 404, ksef.CodeInvoiceUnknown, nipA},
		{"generate from nothing", func(ctx context.Context) error {
			_, err := a.GenerateInvoice(ctx, ksefapi.KsefInvoiceGenerateRequest{})
			return err
		}, ksef.OpInvoiceGenerate, 400, ksef.CodeInvoiceInput, ""},
		{"generate without lines", func(ctx context.Context) error {
			req := invoiceRequest(nipA, nipB, "FV/E2E/ERR/2")
			req.Lines = nil
			_, err := a.GenerateInvoice(ctx, req)
			return err
		}, ksef.OpInvoiceGenerate, 400, ksef.CodeInvoiceInput, "line"},
		{"send without an invoice", func(ctx context.Context) error {
			_, err := a.SendInvoice(ctx, ksefapi.KsefInvoiceSendRequest{SessionId: open.ID})
			return err
		}, ksef.OpInvoiceSend, 400, ksef.CodeInvoiceInput, "encryptedInvoice"},
		{"visualize something else", func(ctx context.Context) error {
			_, _, err := a.VisualizeInvoice(ctx, ksefapi.KsefInvoiceVisualizeRequest{InvoiceData: "<nope/>", OutputFormat: ksefapi.Pdf, OutputLanguage: ksefapi.Pl})
			return err
		}, ksef.OpInvoiceVisualize, 400, ksef.CodeInvoiceVisualize, ""},
		{"query range inverted", query(a, now, now.Add(-time.Hour), ksefapi.Subject1, enc),
			ksef.OpInvoiceQueryStart, 400, ksef.CodeQueryParams, "range.from"},
		{"query range over 3 months", query(a, now.AddDate(0, -4, 0), now, ksefapi.Subject1, enc),
			ksef.OpInvoiceQueryStart, 400, ksef.CodeQueryParams, "3"},
		{"query subject unknown", query(a, now.Add(-time.Hour), now, "subject9", enc),
			ksef.OpInvoiceQueryStart, 400, ksef.CodeQueryParams, "subject9"},
		{"query key not wrapped with the KSeF key", query(a, now.Add(-time.Hour), now, ksefapi.Subject1,
			ksefapi.EncryptionInfo{EncryptedKey: garbageKey, InitVector: enc.InitVector}),
			ksef.OpInvoiceQueryStart, 400, ksef.CodeQueryInit, ""},
		{"status of an unknown query", func(ctx context.Context) error { _, err := a.QueryStatus(ctx, "EX-nope"); return err },
			ksef.OpInvoiceQueryStatus, 404, ksef.CodeQueryStatus, "EX-nope"},
		{"part of an unknown query", func(ctx context.Context) error { _, err := a.QueryResult(ctx, "EX-nope", "1"); return err },
			ksef.OpInvoiceQueryResult, 404, ksef.CodeQueryResult, "EX-nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.em.Requests(tc.op, tc.status)
			err := tc.call(ctx)
			var e *ksef.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want a *ksef.Error", err, err)
			}
			if e.HTTPStatus != tc.status || e.Code != tc.code || e.Operation != tc.op {
				t.Fatalf("%s: HTTP %d code %d, want %s: HTTP %d code %d (%v)", e.Operation, e.HTTPStatus, e.Code, tc.op, tc.status, tc.code, err)
			}
			if !ksef.HasCode(err, tc.code) {
				t.Errorf("HasCode(err, %d) = false", tc.code)
			}
			if e.Description != tc.code.Description() {
				t.Errorf("description %q, want the seed's %q", e.Description, tc.code.Description())
			}
			if e.Details == "" || !strings.Contains(e.Details, tc.details) {
				t.Errorf("details %q, want them to mention %q", e.Details, tc.details)
			}
			if e.Temporary() || errors.Is(err, ksef.ErrAmbiguous) || e.RetryAfter != 0 {
				t.Errorf("a client error reads as temporary %v, ambiguous %v, retry after %v", e.Temporary(), errors.Is(err, ksef.ErrAmbiguous), e.RetryAfter)
			}
			if !strings.Contains(err.Error(), tc.code.Name()) {
				t.Errorf("message %q lacks %s", err, tc.code.Name())
			}
			// The error is the emulator's answer to exactly this call.
			if n := h.em.Requests(tc.op, tc.status) - before; n != 1 {
				t.Errorf("the emulator answered %d × HTTP %d to %s", n, tc.status, tc.op)
			}
		})
	}

	// No error message carries the token.
	if _, err := stranger.SessionStatus(ctx, open.ID); err == nil || strings.Contains(err.Error(), "no-such-token") {
		t.Errorf("error %v", err)
	}
}

// TestTooManyRequests runs the emulator with the production limits on a fake clock: the client
// reports a 429 with Retry-After, waits it out under its retry policy, and hands back one longer
// than MaxRetryAfter at once.
func TestTooManyRequests(t *testing.T) {
	clock := newFakeClock()
	h := startEmulatorAt(t, clock, func(c *emulator.Config) { c.Limits = emulator.LimitConfig{LockoutAfter: -1} })
	ctx := context.Background()

	// The fake clock moves only when the client sleeps.
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		clock.Advance(d)
		return nil
	}
	var calls []ksef.Call
	observe := ksef.WithObserver(func(c ksef.Call) { calls = append(calls, c) })
	once := h.client(t, tokA, noRetries, ksef.WithClock(clock.Now, sleep))
	patient := h.client(t, tokA, ksef.WithClock(clock.Now, sleep), observe)

	s, err := once.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ksefSessionStatus allows 10 a second.
	for i := range 10 {
		if _, err := once.SessionStatus(ctx, s.ID); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	_, err = once.SessionStatus(ctx, s.ID)
	var e *ksef.Error
	if !errors.As(err, &e) {
		t.Fatalf("11th call in a second: %v", err)
	}
	if e.HTTPStatus != http.StatusTooManyRequests || e.Code != ksef.CodeTooManyRequests || !e.TooManyRequests() || !e.Temporary() {
		t.Errorf("11th call: %v", err)
	}
	if !ksef.HasCode(err, ksef.CodeTooManyRequests) || e.RetryAfter != time.Second || !strings.Contains(e.Details, "10") {
		t.Errorf("11th call: retry after %v, details %q", e.RetryAfter, e.Details)
	}
	if len(slept) != 0 {
		t.Errorf("MaxAttempts 1 slept %v", slept)
	}

	// With retries the client waits the second out and gets its answer.
	info, err := patient.SessionStatus(ctx, s.ID)
	if err != nil {
		t.Fatalf("after waiting: %v", err)
	}
	if info.SessionStatus != ksefapi.Active {
		t.Errorf("session %+v", info)
	}
	if len(calls) != 2 || calls[0].HTTPStatus != 429 || !calls[0].Retrying || calls[1].HTTPStatus != 200 || calls[1].Attempt != 2 {
		t.Errorf("calls %+v", calls)
	}
	if len(slept) != 1 || slept[0] < time.Second {
		t.Errorf("slept %v, want one sleep of at least the 1 s of Retry-After", slept)
	}
	if n := h.em.TooManyRequests(); n != 2 {
		t.Errorf("the emulator answered %d 429s, want 2", n)
	}

	// ksefInvoiceSend allows 30 a minute: the 31st waits for the first to leave the minute,
	// longer than MaxRetryAfter (30 s), so it comes back without waiting.
	xml := invoiceXML(t, nipA, nipB, "FV/E2E/LIMIT/1")
	for i := range 30 {
		if _, err := s.Send(ctx, xml); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		clock.Advance(150 * time.Millisecond) // under 10 a second
	}
	calls, slept = nil, nil
	send := h.client(t, tokA, ksef.WithClock(clock.Now, sleep), observe)
	req, err := s.SendRequest(xml)
	if err != nil {
		t.Fatal(err)
	}
	_, err = send.SendInvoice(ctx, req)
	if !errors.As(err, &e) || !e.TooManyRequests() {
		t.Fatalf("31st send: %v", err)
	}
	if want := 60*time.Second - 30*150*time.Millisecond; e.RetryAfter < want || e.RetryAfter > want+time.Second {
		t.Errorf("retry after %v, want about %v", e.RetryAfter, want)
	}
	if errors.Is(err, ksef.ErrAmbiguous) {
		t.Error("a 429 reads as ambiguous: it was never processed")
	}
	if len(calls) != 1 || len(slept) != 0 {
		t.Errorf("calls %+v, slept %v: want one attempt and no wait", calls, slept)
	}
}

func mustRequest(t *testing.T, s *ksef.Session, xml []byte) ksefapi.KsefInvoiceSendRequest {
	t.Helper()
	req, err := s.SendRequest(xml)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestServerErrorForms: KSeF's 5xx come as the proxy's HTML pages, empty bodies or the service's
// JSON Error with the operation's failure code (in-practice.md). The client reads each into an
// *ksef.Error that is temporary, keeps the code when there is one and the page's start when
// not, and marks a send's as ambiguous.
func TestServerErrorForms(t *testing.T) {
	h := startEmulator(t, func(c *emulator.Config) { c.Faults = emulator.Faults{ServerErrorRate: 1} })
	ctx := context.Background()
	a := h.client(t, tokA, noRetries)
	now := time.Now()
	for _, tc := range []struct {
		op   ksef.Operation
		code ksef.Code // of the JSON 500
		call func() error
	}{
		{ksef.OpPublicKey, ksef.CodeKsefPublicKey, func() error { _, err := a.PublicKey(ctx); return err }},
		{ksef.OpSessionOpenOnline, ksef.CodeSessionOpen, func() error {
			_, err := a.OpenOnlineSession(ctx, ksefapi.KsefSessionOpenOnlineRequest{InvoiceVersion: ksefapi.V3})
			return err
		}},
		{ksef.OpSessionOpenBatch, ksef.CodeSessionOpen, func() error {
			_, err := a.OpenBatchSession(ctx, ksefapi.KsefSessionOpenBatchRequest{InvoiceVersion: ksefapi.V3})
			return err
		}},
		{ksef.OpSessionStatus, ksef.CodeSessionStatus, func() error { _, err := a.SessionStatus(ctx, "s"); return err }},
		{ksef.OpSessionClose, ksef.CodeSessionClose, func() error { _, err := a.CloseSession(ctx, "s"); return err }},
		{ksef.OpSessionUpo, ksef.CodeSessionUPO, func() error { _, err := a.SessionUPO(ctx, "s"); return err }},
		{ksef.OpSessionInvoices, ksef.CodeSessionStatus, func() error { _, err := a.SessionInvoices(ctx, "s"); return err }},
		{ksef.OpInvoiceSend, ksef.CodeInvoiceSend, func() error {
			_, err := a.SendInvoice(ctx, ksefapi.KsefInvoiceSendRequest{SessionId: "s"})
			return err
		}},
		{ksef.OpInvoiceStatus, ksef.CodeInvoiceStatus, func() error { _, err := a.InvoiceStatus(ctx, "i"); return err }},
		{ksef.OpInvoiceGet, ksef.CodeInvoiceStatus, func() error {
			_, _, err := a.GetInvoice(ctx, ksef.NewNumber(nipA, now, 1))
			return err
		}},
		{ksef.OpInvoiceQueryStart, ksef.CodeQueryInit, func() error {
			_, err := a.StartQuery(ctx, ksefapi.KsefInvoiceQueryStartRequest{SubjectType: ksefapi.Subject1})
			return err
		}},
		{ksef.OpInvoiceQueryStatus, ksef.CodeQueryStatus, func() error { _, err := a.QueryStatus(ctx, "q"); return err }},
		{ksef.OpInvoiceQueryResult, ksef.CodeQueryResult, func() error { _, err := a.QueryResult(ctx, "q", "1"); return err }},
		{ksef.OpInvoiceGenerate, ksef.CodeInvoiceFormat, func() error {
			_, err := a.GenerateInvoice(ctx, ksefapi.KsefInvoiceGenerateRequest{})
			return err
		}},
		{ksef.OpInvoiceValidate, ksef.CodeInvoiceFormat, func() error { _, err := a.ValidateInvoice(ctx, []byte("<a/>")); return err }},
		{ksef.OpInvoiceVisualize, ksef.CodeInvoiceVisualize, func() error {
			_, _, err := a.VisualizeInvoice(ctx, ksefapi.KsefInvoiceVisualizeRequest{})
			return err
		}},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			// The emulator takes the four forms in turn.
			forms := map[string]bool{}
			for range 4 {
				err := tc.call()
				var e *ksef.Error
				if !errors.As(err, &e) || e.Operation != tc.op || !e.Temporary() {
					t.Fatalf("err = %v, want a temporary *ksef.Error of %s", err, tc.op)
				}
				if e.Ambiguous != (tc.op == ksef.OpInvoiceSend) || errors.Is(err, ksef.ErrAmbiguous) != e.Ambiguous {
					t.Errorf("HTTP %d: ambiguous %v", e.HTTPStatus, e.Ambiguous)
				}
				switch {
				case e.HTTPStatus == http.StatusInternalServerError:
					if e.Code != tc.code || e.Description != tc.code.Description() || e.Body != "" {
						t.Errorf("JSON 500: code %d %q, body %q; want %d", e.Code, e.Description, e.Body, tc.code)
					}
					forms["500 JSON"] = true
				case e.HTTPStatus == http.StatusBadGateway && strings.Contains(e.Body, "502 Bad Gateway") && e.Code == 0:
					forms["502 HTML"] = true
				case e.HTTPStatus == http.StatusServiceUnavailable && strings.Contains(e.Body, "503 Service") && e.Code == 0:
					forms["503 HTML"] = true
				case e.HTTPStatus == http.StatusServiceUnavailable && e.Body == "" && e.Code == 0:
					forms["503 empty"] = true
				default:
					t.Errorf("unexpected answer: %#v", e)
				}
			}
			if len(forms) != 4 {
				t.Errorf("forms seen: %v", forms)
			}
		})
	}
}

// TestBatchAfterUploadWindow: a batch session not closed within its upload window (20 min per
// declared part) takes no more parts and cannot be closed (1106).
func TestBatchAfterUploadWindow(t *testing.T) {
	clock := newFakeClock()
	h := startEmulatorAt(t, clock, nil)
	ctx := context.Background()
	a := h.client(t, tokA, noRetries)
	id, parts, uploads := openBatch(t, a, []string{"FV/E2E/LATE/1"})
	clock.Advance(2 * emulator.DefaultBatchPartWindow) // two parts
	err := a.UploadBatchPart(ctx, uploads[0], bytes.NewReader(parts[0]), int64(len(parts[0])))
	var e *ksef.Error
	if !errors.As(err, &e) || e.HTTPStatus != http.StatusForbidden || e.Code != ksef.CodeInvoiceSend {
		t.Errorf("late upload: %v", err)
	}
	_, err = a.CloseSession(ctx, id)
	if !errors.As(err, &e) || e.HTTPStatus != http.StatusBadRequest || !ksef.HasCode(err, ksef.CodeSessionClose) || !strings.Contains(e.Details, id) {
		t.Errorf("late close: %v", err)
	}
	info, err := a.SessionStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.SessionStatus != ksefapi.Closed || info.Status.Code != 440 {
		t.Errorf("session %+v", info)
	}
}
