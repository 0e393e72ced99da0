package ksef_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// TestSendCancelledAfterArrivalIsAmbiguous: a send whose context ends while KSeF already has the
// invoice (the answer is held up on the way back) is a timeout like any other, so the error must
// wrap ErrAmbiguous as well as the context's error, and the client must not repeat it.
func TestSendCancelledAfterArrivalIsAmbiguous(t *testing.T) {
	h := startEmulator(t, nil)
	// A proxy in front of the emulator that holds every send's answer until the client leaves.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/invoices/send" {
			h.em.Handler().ServeHTTP(w, r)
			return
		}
		h.em.Handler().ServeHTTP(httptest.NewRecorder(), r)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	rec := &recorder{}
	c, err := ksef.New(srv.URL, append(rec.options(), ksef.WithToken(tokA))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := c.OpenSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Forget()
	xml := invoiceXML(t, nipA, nipB, "FV/E2E/TIMEOUT/1")
	sendCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.Send(sendCtx, xml)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if !errors.Is(err, ksef.ErrAmbiguous) {
		t.Errorf("err = %v: a send cut short by its context may have reached KSeF, want ErrAmbiguous", err)
	}
	if n := len(rec.calls(ksef.OpInvoiceSend)); n != 1 {
		t.Errorf("the client tried %d times", n)
	}
	if err := h.em.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.em.SendCount(nipA, "FV/E2E/TIMEOUT/1", kcrypto.SHA256Base64(xml)); n != 1 {
		t.Errorf("the invoice reached KSeF %d times, want 1", n)
	}
}
