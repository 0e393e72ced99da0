package ksef_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// sendSink serves the emulator but answers ksefInvoiceSend with send (nil: drain the body and
// answerSend), so that a send's body can be examined, or a benchmark's allocations are the
// client's rather than the emulator's decoding and validation.
func sendSink(tb testing.TB, send http.HandlerFunc) (*ksef.Client, *harness) {
	tb.Helper()
	h := startEmulator(tb, nil)
	em := h.em.Handler()
	if send == nil {
		send = func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			answerSend(w)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v2/invoices/send" {
			em.ServeHTTP(w, r)
			return
		}
		send(w, r)
	}))
	tb.Cleanup(srv.Close)
	c, err := ksef.New(srv.URL, ksef.WithToken(tokA))
	if err != nil {
		tb.Fatal(err)
	}
	return c, h
}

// answerSend answers a send as KSeF does.
func answerSend(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"20260302-EE-0000000000-0000000000-00","created":"2026-03-02T09:00:00Z"}`)
}

// BenchmarkSessionSend measures one online send of a typical (30 KB) and a large (0.9 MB)
// invoice over a real socket; B/op is the point: the sender's peak memory follows it.
func BenchmarkSessionSend(b *testing.B) {
	c, _ := sendSink(b, nil)
	ctx := context.Background()
	s, err := c.OpenSession(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Forget()
	for _, size := range []int{30 << 10, 900_000} {
		line := []byte("<FaWiersz><NrWierszaFa>1</NrWierszaFa><P_7>Usługa</P_7><P_11>100.00</P_11></FaWiersz>\n")
		xml := bytes.Repeat(line, size/len(line)+1)[:size]
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Send(ctx, xml); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
