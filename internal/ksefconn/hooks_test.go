package ksefconn

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ratelimit"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int32
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestHooksSeeRequestsAndLimitWaits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	// ksefSessionStatus allows 10 a second; the 11th finds no slot and, with a tiny
	// MaxLimitWait, gives up at once.
	s := Settings{APIURL: srv.URL, Tokens: Tokens{"5261040828": "tok"}, Limits: "production", LimitHeadroom: 1, LimitMultiplier: 1,
		MaxLimitWait: time.Millisecond, RequestTimeout: 5 * time.Second}
	c, err := NewClients(s, ratelimit.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	var waits []ksef.Operation
	c.SetHooks(Hooks{
		Transport: func(next http.RoundTripper) http.RoundTripper { return countingTransport{next, &requests} },
		LimitWait: func(op ksef.Operation) { waits = append(waits, op) },
	})
	cl, err := c.For(context.Background(), "5261040828")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		_, err := cl.SessionStatus(context.Background(), "20261125-SO-1")
		var we *ratelimit.WaitError
		switch {
		case i < 10 && err != nil:
			t.Fatalf("call %d: %v", i+1, err)
		case i == 10 && !errors.As(err, &we):
			t.Fatalf("call 11: %v, want a *ratelimit.WaitError", err)
		}
	}
	if n := requests.Load(); n != 10 {
		t.Errorf("the transport saw %d requests, want 10", n)
	}
	if len(waits) != 1 || waits[0] != ksef.OpSessionStatus {
		t.Errorf("limit waits %v, want one of %s", waits, ksef.OpSessionStatus)
	}
}
