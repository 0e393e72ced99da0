package ksef_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// capture is what a send's request carried.
type capture struct {
	body             []byte
	contentLength    int64
	transferEncoding []string
	contentType      string
}

// capturingSink records every send's request and answers it as KSeF does.
func capturingSink(t *testing.T) (*ksef.Client, func() []capture) {
	var mu sync.Mutex
	var got []capture
	c, _ := sendSink(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, capture{body, r.ContentLength, r.TransferEncoding, r.Header.Get("Content-Type")})
		mu.Unlock()
		answerSend(w)
	})
	return c, func() []capture {
		mu.Lock()
		defer mu.Unlock()
		return append([]capture(nil), got...)
	}
}

// TestSendStreamsTheRequestOfSendRequest: the body Send streams is byte for byte the JSON the
// generated client makes of SendRequest's request, around the block and base64 boundaries and
// kcrypto's chunk, with its length declared rather than chunked.
func TestSendStreamsTheRequestOfSendRequest(t *testing.T) {
	c, captured := capturingSink(t)
	ctx := context.Background()
	s, err := c.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Forget()
	const chunk = 32 << 10
	for _, size := range []int{0, 1, 15, 16, 17, 31, 32, 47, 48, 1000, chunk - 1, chunk, chunk + 1, 3*chunk + 5, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			const pattern = "<>&\"\\ąż\n" // what JSON would escape, were it not base64
			xml := make([]byte, size)
			for i := range xml {
				xml[i] = pattern[i%len(pattern)]
			}
			before := len(captured())
			if _, err := s.Send(ctx, xml); err != nil {
				t.Fatal(err)
			}
			caps := captured()[before:]
			if len(caps) != 1 {
				t.Fatalf("%d sends reached the server", len(caps))
			}
			got := caps[0]
			req, err := s.SendRequest(xml)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.body, want) {
				t.Errorf("body differs from the generated client's:\n got %.200s…\nwant %.200s…", got.body, want)
			}
			var decoded ksefapi.KsefInvoiceSendRequest
			if err := json.Unmarshal(got.body, &decoded); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decoded, req) {
				t.Errorf("decoded body: hash %q size %d session %q, want %q %d %q", decoded.Encrypted.InvoiceHash,
					decoded.Encrypted.InvoiceSize, decoded.SessionId, req.Encrypted.InvoiceHash, req.Encrypted.InvoiceSize, req.SessionId)
			}
			if got.contentLength != int64(len(want)) || len(got.transferEncoding) != 0 {
				t.Errorf("Content-Length %d, Transfer-Encoding %v; want %d and none", got.contentLength, got.transferEncoding, len(want))
			}
			if got.contentType != "application/json" {
				t.Errorf("Content-Type %q", got.contentType)
			}
		})
	}
}

// TestSendKeepsItsCipherThroughForget: a Forget while the transport is still reading a body
// neither garbles nor stops it (the body's cipher was made before the request), while a
// send after Forget is refused without reaching KSeF.
func TestSendKeepsItsCipherThroughForget(t *testing.T) {
	var s *ksef.Session
	var body []byte
	var readErr error
	c, _ := sendSink(t, func(w http.ResponseWriter, r *http.Request) {
		// Read a little, forget, read the rest: at 8 MB most of the body is still to be
		// encrypted when the key is zeroed.
		head := make([]byte, 1<<10)
		n, err := io.ReadFull(r.Body, head)
		s.Forget()
		rest, rerr := io.ReadAll(r.Body)
		body, readErr = append(head[:n], rest...), errors.Join(err, rerr)
		answerSend(w)
	})
	ctx := context.Background()
	var err error
	if s, err = c.OpenSession(ctx); err != nil {
		t.Fatal(err)
	}
	xml := bytes.Repeat([]byte("<P_7>Usługa</P_7>\n"), 8<<20/19)
	req, err := s.SendRequest(xml)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(req)
	if _, err := s.Send(ctx, xml); err != nil {
		t.Fatal(err)
	}
	if readErr != nil || !bytes.Equal(body, want) {
		t.Fatalf("the body read across a Forget: %d bytes (want %d), equal %v, %v", len(body), len(want), bytes.Equal(body, want), readErr)
	}
	_, err = s.Send(ctx, xml)
	if !errors.Is(err, ksef.ErrSessionForgotten) || errors.Is(err, ksef.ErrAmbiguous) {
		t.Errorf("send after Forget: %v, want ErrSessionForgotten and not ambiguous", err)
	}
}

// largeInvoiceXML generates a schema-valid FA(3) invoice from A to B of about size bytes.
func largeInvoiceXML(t *testing.T, number string, size int) []byte {
	t.Helper()
	_, val := deps(t)
	gen := func(lines int) []byte {
		req := invoiceRequest(nipA, nipB, number)
		for len(req.Lines) < lines {
			l := req.Lines[len(req.Lines)%2]
			l.Name = fmt.Sprintf("%s, pozycja %d", l.Name, len(req.Lines)+1)
			req.Lines = append(req.Lines, l)
		}
		b, err := fa3.Generate(fa3wire.Request(req), fa3.WithValidator(val))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	small, big := gen(2), gen(102)
	per := (len(big) - len(small)) / 100
	return gen(2 + (size-len(small))/per)
}

// TestSendStreamedIsAccepted sends a typical and a large invoice over real HTTP to the
// emulator, which decrypts and validates them, once as they come and once through 429s (which
// the emulator answers before reading the body): each is accepted once and is, downloaded,
// the bytes sent.
func TestSendStreamedIsAccepted(t *testing.T) {
	xmls := map[string][]byte{
		"typical": invoiceXML(t, nipA, nipB, "FV/E2E/STREAM/1"),
		"large":   largeInvoiceXML(t, "FV/E2E/STREAM/2", 900_000),
	}
	if n := len(xmls["large"]); n < 850_000 || n > emulator.DefaultMaxInvoiceSize {
		t.Fatalf("the large invoice is %d bytes", n)
	}
	for _, tc := range []struct {
		name   string
		faults emulator.Faults
	}{
		{"as they come", emulator.Faults{}},
		{"through 429s", emulator.Faults{TooManyRate: 0.5, RetryAfter: time.Second, Ops: []ksef.Operation{ksef.OpInvoiceSend}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rec, c, s := faultedSession(t, tc.faults)
			ctx := context.Background()
			for _, name := range []string{"large", "typical"} {
				xml := xmls[name]
				r, err := s.Send(ctx, xml)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				st := awaitStored(t, h, c, r.Id)
				if st.Status.Code != int32(ksef.StatusAccepted) {
					t.Fatalf("%s: %d %s", name, st.Status.Code, deref(st.Status.Details))
				}
				body, _, err := c.GetInvoice(ctx, deref(st.KsefNumber))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(body)
				body.Close()
				if err != nil || !bytes.Equal(got, xml) {
					t.Errorf("%s: downloaded %d bytes (%v), sent %d, equal %v", name, len(got), err, len(xml), bytes.Equal(got, xml))
				}
			}
			if list, err := c.SessionInvoices(ctx, s.ID); err != nil || len(list) != len(xmls) {
				t.Errorf("the session holds %d invoices (%v), want %d", len(list), err, len(xmls))
			}
			throttled := 0
			for _, call := range rec.calls(ksef.OpInvoiceSend) {
				if call.HTTPStatus == http.StatusTooManyRequests && call.Retrying {
					throttled++
				}
			}
			if want := tc.faults.TooManyRate > 0; (throttled > 0) != want {
				t.Errorf("%d sends retried after a 429", throttled)
			}
		})
	}
}

// faultedSession starts an emulator injecting faults, seeded so that at TooManyRate 0.5 the
// first send gets three 429s in a row and then none, and opens a session of A with a client
// recording its attempts and default retry policy.
func faultedSession(t *testing.T, faults emulator.Faults) (*harness, *recorder, *ksef.Client, *ksef.Session) {
	t.Helper()
	h := startEmulator(t, func(c *emulator.Config) {
		c.Faults = faults
		c.Seed = 2
	})
	rec := &recorder{}
	c := h.client(t, tokA, rec.options()...)
	s, err := c.OpenSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Forget)
	return h, rec, c, s
}

// TestSendAfterForgetBetweenAttempts: a send repeated after a 429 makes a new body, which a
// Forget in between refuses; nothing more reaches KSeF and the error is not ambiguous.
func TestSendAfterForgetBetweenAttempts(t *testing.T) {
	h := startEmulator(t, func(c *emulator.Config) {
		c.Faults = emulator.Faults{TooManyRate: 1, RetryAfter: time.Second, Ops: []ksef.Operation{ksef.OpInvoiceSend}}
	})
	ctx := context.Background()
	var s *ksef.Session
	c := h.client(t, tokA, ksef.WithClock(time.Now, func(context.Context, time.Duration) error {
		s.Forget() // the backoff before the second attempt
		return nil
	}))
	var err error
	if s, err = c.OpenSession(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(ctx, invoiceXML(t, nipA, nipB, "FV/E2E/STREAM/FORGET"))
	if !errors.Is(err, ksef.ErrSessionForgotten) || errors.Is(err, ksef.ErrAmbiguous) {
		t.Errorf("err = %v, want ErrSessionForgotten and not ambiguous", err)
	}
	if n := answered(h.em, ksef.OpInvoiceSend); n != 1 {
		t.Errorf("the emulator answered %d sends, want the one 429", n)
	}
}
