package ksef

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// scripted is an HTTP server over a real socket that answers with a fixed sequence of responses:
// the retry policy is tested against exact status sequences no real service produces on demand.
type scripted struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	hits    atomic.Int32
	auth    []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.hits.Add(1)) - 1
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	if n >= len(s.answers) {
		n = len(s.answers) - 1
	}
	s.answers[n](w)
}

func jsonAnswer(status int, v any, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
}

func htmlAnswer(status int) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
	}
}

type fakeLimiter struct {
	mu        sync.Mutex
	waits     []Operation
	throttled []time.Duration
}

func (l *fakeLimiter) Wait(_ context.Context, op Operation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits = append(l.waits, op)
	return nil
}

func (l *fakeLimiter) Throttled(_ context.Context, _ Operation, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.throttled = append(l.throttled, d)
}

func newScriptedClient(t *testing.T, s *scripted, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	var slept []time.Duration
	var mu sync.Mutex
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	opts = append([]Option{WithToken("secret-token-123"), WithClock(time.Now, sleep)}, opts...)
	c, err := New(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, &slept
}

var okStatus = ksefapi.KsefSessionStatusResponse{SessionInfo: ksefapi.SessionInfo{
	Status: ksefapi.StatusInfo{Code: 100, Description: "open"}, SessionStatus: ksefapi.Active, InvoiceCount: 3,
}}

func TestRetryPolicy(t *testing.T) {
	errBody := ksefapi.Error{Code: "1203", Description: CodeInvoiceFormat.Description(), Details: ptr("line 3: P_2 missing")}
	tooMany := ksefapi.Error{Code: "429", Description: "Too Many Requests"}
	for _, tc := range []struct {
		name      string
		answers   []func(http.ResponseWriter)
		call      func(ctx context.Context, c *Client) error
		wantHits  int32
		wantSleep []time.Duration // exact sleeps, or nil to only count them
		sleeps    int
		check     func(t *testing.T, err error)
	}{
		{
			name:     "429 honours Retry-After then succeeds",
			answers:  []func(http.ResponseWriter){jsonAnswer(429, tooMany, "Retry-After", "7"), jsonAnswer(200, okStatus)},
			call:     statusCall,
			wantHits: 2, sleeps: 1,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:     "5xx with an HTML body is retried",
			answers:  []func(http.ResponseWriter){htmlAnswer(502), htmlAnswer(503), jsonAnswer(200, okStatus)},
			call:     statusCall,
			wantHits: 3, sleeps: 2,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:     "5xx until attempts run out returns the last error",
			answers:  []func(http.ResponseWriter){htmlAnswer(502)},
			call:     statusCall,
			wantHits: 5, sleeps: 4,
			check: func(t *testing.T, err error) {
				var e *Error
				if !errors.As(err, &e) || e.HTTPStatus != 502 || !e.Temporary() || !strings.Contains(e.Body, "Bad Gateway") {
					t.Fatalf("err = %#v", err)
				}
			},
		},
		{
			name:     "4xx is never retried and carries the seed code",
			answers:  []func(http.ResponseWriter){jsonAnswer(400, errBody)},
			call:     statusCall,
			wantHits: 1, sleeps: 0,
			check: func(t *testing.T, err error) {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvoiceFormat || e.Details != "line 3: P_2 missing" || e.Temporary() {
					t.Fatalf("err = %#v", err)
				}
				if !HasCode(err, CodeInvoiceFormat) || HasCode(err, CodeInvoiceSize) {
					t.Fatal("HasCode")
				}
			},
		},
		{
			name:     "send after a 5xx is ambiguous and not repeated",
			answers:  []func(http.ResponseWriter){htmlAnswer(502), jsonAnswer(200, ksefapi.KsefInvoiceSendResponse{Id: "x"})},
			call:     sendCall,
			wantHits: 1, sleeps: 0,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrAmbiguous) {
					t.Fatalf("err = %v, want ErrAmbiguous", err)
				}
			},
		},
		{
			name:     "send after a 429 is repeated: it was not processed",
			answers:  []func(http.ResponseWriter){jsonAnswer(429, tooMany, "Retry-After", "1"), jsonAnswer(200, ksefapi.KsefInvoiceSendResponse{Id: "x"})},
			call:     sendCall,
			wantHits: 2, sleeps: 1,
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:     "a Retry-After longer than MaxRetryAfter goes back to the caller",
			answers:  []func(http.ResponseWriter){jsonAnswer(429, tooMany, "Retry-After", "2400")},
			call:     statusCall,
			wantHits: 1, sleeps: 0,
			check: func(t *testing.T, err error) {
				var e *Error
				if !errors.As(err, &e) || !e.TooManyRequests() || e.RetryAfter != 40*time.Minute {
					t.Fatalf("err = %#v", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{answers: tc.answers}
			lim := &fakeLimiter{}
			c, slept := newScriptedClient(t, s, WithLimiter(lim))
			err := tc.call(context.Background(), c)
			tc.check(t, err)
			if got := s.hits.Load(); got != tc.wantHits {
				t.Errorf("server saw %d requests, want %d", got, tc.wantHits)
			}
			if len(*slept) != tc.sleeps {
				t.Errorf("slept %v, want %d sleeps", *slept, tc.sleeps)
			}
			if len(lim.waits) != int(tc.wantHits) {
				t.Errorf("limiter waited %d times for %d requests", len(lim.waits), tc.wantHits)
			}
		})
	}
}

func TestRetryAfterIsHonouredAndReported(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){
		jsonAnswer(429, ksefapi.Error{Code: "429", Description: "Too Many Requests"}, "Retry-After", "7"),
		jsonAnswer(200, okStatus),
	}}
	lim := &fakeLimiter{}
	var calls []Call
	c, slept := newScriptedClient(t, s, WithLimiter(lim), WithObserver(func(c Call) { calls = append(calls, c) }))
	info, err := c.SessionStatus(context.Background(), "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if info.InvoiceCount != 3 {
		t.Fatalf("InvoiceCount = %d", info.InvoiceCount)
	}
	if len(*slept) != 1 || (*slept)[0] < 7*time.Second {
		t.Fatalf("slept %v, want at least the 7 s of Retry-After", *slept)
	}
	if len(lim.throttled) != 1 || lim.throttled[0] != 7*time.Second {
		t.Fatalf("limiter told %v, want one 7 s throttle", lim.throttled)
	}
	if len(calls) != 2 || calls[0].HTTPStatus != 429 || !calls[0].Retrying || calls[1].HTTPStatus != 200 || calls[1].Attempt != 2 {
		t.Fatalf("observed %+v", calls)
	}
}

func TestTokenIsSentAndNeverPrinted(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){jsonAnswer(200, okStatus)}}
	c, _ := newScriptedClient(t, s)
	if _, err := c.SessionStatus(context.Background(), "s-1"); err != nil {
		t.Fatal(err)
	}
	if s.auth[0] != "Bearer secret-token-123" {
		t.Fatalf("Authorization = %q", s.auth[0])
	}
	if strings.Contains(c.String(), "secret") {
		t.Fatalf("String() leaks the token: %s", c)
	}
}

func TestContextEndsBackoff(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){htmlAnswer(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, err := New(srv.URL, WithRetryPolicy(RetryPolicy{MaxAttempts: 10, BaseDelay: time.Hour, MaxDelay: time.Hour, MaxRetryAfter: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.SessionStatus(ctx, "s")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.HTTPStatus != 503 {
		t.Fatalf("the last answer is lost: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"30", 30 * time.Second}, {" 5 ", 5 * time.Second}, {"-3", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func statusCall(ctx context.Context, c *Client) error {
	_, err := c.SessionStatus(ctx, "s-1")
	return err
}

func sendCall(ctx context.Context, c *Client) error {
	_, err := c.SendInvoice(ctx, ksefapi.KsefInvoiceSendRequest{SessionId: "s-1",
		Encrypted: ksefapi.KsefInvoiceEncrypted{EncryptedInvoice: []byte{1}, InvoiceHash: "h", InvoiceSize: 1}})
	return err
}

func ptr[T any](v T) *T { return &v }

func TestPartialRetryPolicyTakesDefaults(t *testing.T) {
	s := &scripted{answers: []func(http.ResponseWriter){
		jsonAnswer(429, ksefapi.Error{Code: "429", Description: "Too Many Requests"}, "Retry-After", "7"),
		jsonAnswer(200, okStatus),
	}}
	// Only MaxAttempts is set: the 7 s Retry-After is still within the default MaxRetryAfter.
	c, slept := newScriptedClient(t, s, WithRetryPolicy(RetryPolicy{MaxAttempts: 3}))
	if _, err := c.SessionStatus(context.Background(), "s-1"); err != nil {
		t.Fatalf("a short Retry-After was not waited out: %v", err)
	}
	if len(*slept) != 1 || (*slept)[0] < 7*time.Second {
		t.Fatalf("slept %v", *slept)
	}
}
