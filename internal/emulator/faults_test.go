package emulator

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func TestInjectedServerErrorsTakeEveryForm(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{ServerErrorRate: 1} })
	type answer struct {
		status int
		ctype  string
		empty  bool
	}
	seen := map[answer]bool{}
	for range 4 {
		code, h, body := v.do(http.MethodGet, "/v2/sessions/x", tokA, "", nil)
		a := answer{code, strings.Split(h.Get("Content-Type"), ";")[0], len(body) == 0}
		seen[a] = true
		if code == http.StatusInternalServerError {
			wantError(t, code, body, code, ksef.CodeSessionStatus)
		}
	}
	for _, want := range []answer{
		{http.StatusBadGateway, "text/html", false},
		{http.StatusServiceUnavailable, "text/html", false},
		{http.StatusServiceUnavailable, "", true},
		{http.StatusInternalServerError, "application/json", false},
	} {
		if !seen[want] {
			t.Errorf("never answered %+v; saw %v", want, seen)
		}
	}
	// The emulator's own endpoints are never faulted.
	if code, _, _ := v.do(http.MethodGet, "/healthz", "", "", nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	if got := v.e.Stats().Faults["5xx"]; got != 4 {
		t.Errorf("5xx faults counted: %d", got)
	}
}

func TestInjected429(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{TooManyRate: 1, RetryAfter: 3 * time.Second} })
	code, h, body := v.do(http.MethodGet, "/v2/sessions/x", tokA, "", nil)
	wantError(t, http.StatusTooManyRequests, body, code, ksef.CodeTooManyRequests)
	if h.Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q", h.Get("Retry-After"))
	}
	if v.e.TooManyRequests() != 1 {
		t.Errorf("429s: %d", v.e.TooManyRequests())
	}
}

func TestAmbiguousSendTakesEffect(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{AmbiguousRate: 1} })
	s := v.open(tokA)
	xml := readSample(t, "valid", sample)
	resp, err := s.c.KsefInvoiceSendWithResponse(context.Background(), s.request(xml))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() < 500 {
		t.Fatalf("HTTP %d, want a 5xx", resp.StatusCode())
	}
	v.settle()
	// The client that lost the answer finds its invoice in the session.
	list, _ := s.c.KsefSessionInvoicesWithResponse(context.Background(), s.id)
	if list.JSON200 == nil || len(list.JSON200.Invoices) != 1 || list.JSON200.Invoices[0].Status.Code != 200 {
		t.Fatalf("invoices %s", list.Body)
	}
	if n := v.e.SendCount(nipA, "llcdpk88gk-2025-06-24", kcrypto.SHA256Base64(xml)); n != 1 {
		t.Errorf("send count %d", n)
	}
	// Close also takes effect despite its 5xx.
	cl, _ := s.c.KsefSessionCloseWithResponse(context.Background(), s.id)
	if cl.StatusCode() < 500 {
		t.Fatalf("close: HTTP %d", cl.StatusCode())
	}
	if info := s.info(); info.SessionStatus != ksefapi.Closed {
		t.Errorf("session %+v", info)
	}
	if v.e.Stats().Faults["ambiguous"] != 2 {
		t.Errorf("faults %v", v.e.Stats().Faults)
	}
}

func TestStuckInvoice(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{StuckRate: 1, StuckFor: time.Hour} })
	s := v.open(tokA)
	id := s.send(readSample(t, "valid", sample))
	v.settle()
	if st := s.status(id); st.Status.Code != 150 {
		t.Fatalf("status %d", st.Status.Code)
	}
	v.clock.Advance(time.Hour)
	if st := s.status(id); st.Status.Code != 200 {
		t.Fatalf("after an hour: %d", st.Status.Code)
	}
}

func TestEarlyExpiry(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{EarlyExpiryRate: 1, EarlyExpiry: time.Minute} })
	s := v.open(tokA)
	v.clock.Advance(time.Minute)
	if info := s.info(); info.SessionStatus != ksefapi.Closed {
		t.Fatalf("%+v", info)
	}
}

func TestLatencyUsesSleep(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	v := newEnv(t, func(c *Config) {
		c.Faults = Faults{Latency: 100 * time.Millisecond, Jitter: 50 * time.Millisecond, SlowRate: 1, SlowDelay: time.Second}
		c.Sleep = func(_ context.Context, d time.Duration) error {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
			return nil
		}
	})
	for range 3 {
		v.do(http.MethodGet, "/v2/public-key", "", "", nil)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slept) != 3 {
		t.Fatalf("slept %v", slept)
	}
	for _, d := range slept {
		if d < 1100*time.Millisecond || d > 1150*time.Millisecond {
			t.Errorf("latency %s outside 1.1-1.15 s", d)
		}
	}
}

func TestFaultsAreDeterministic(t *testing.T) {
	run := func() []int {
		v := newEnv(t, func(c *Config) { c.Seed = 42; c.Faults = Faults{ServerErrorRate: 0.3, TooManyRate: 0.2} })
		var codes []int
		for range 40 {
			code, _, _ := v.do(http.MethodGet, "/v2/sessions/x", tokA, "", nil)
			codes = append(codes, code)
		}
		return codes
	}
	a, b := run(), run()
	faulted := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("runs differ at %d: %v vs %v", i, a, b)
		}
		if a[i] != http.StatusNotFound {
			faulted++
		}
	}
	if faulted == 0 || faulted == len(a) {
		t.Errorf("%d of %d faulted", faulted, len(a))
	}
}

func TestFaultOpsFilter(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Faults = Faults{ServerErrorRate: 1, Ops: []ksef.Operation{ksef.OpInvoiceSend}}
	})
	if code, _, _ := v.do(http.MethodGet, "/v2/sessions/x", tokA, "", nil); code != http.StatusNotFound {
		t.Errorf("unlisted operation faulted: %d", code)
	}
	if code, _, _ := v.do(http.MethodPost, "/v2/invoices/send", tokA, "application/json", strings.NewReader("{}")); code < 500 {
		t.Errorf("listed operation not faulted: %d", code)
	}
}

func TestAmbiguousFaultKeepsRealErrors(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Faults = Faults{AmbiguousRate: 1} })
	s := v.open(tokA)
	req := s.request(readSample(t, "valid", sample))
	req.SessionId = "unknown"
	resp, err := s.c.KsefInvoiceSendWithResponse(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// A send that did not take effect keeps its own answer.
	wantError(t, http.StatusNotFound, resp.Body, resp.StatusCode(), ksef.CodeSessionUnknown)
}
