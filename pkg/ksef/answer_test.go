package ksef

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hugeAnswer streams n bytes of a JSON array (chunked, or with its Content-Length when
// declare is set) and reports how many bytes it got to write before the client hung up.
func hugeAnswer(n int, declare bool, written chan<- int) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		if declare {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		w.WriteHeader(http.StatusOK)
		chunk := []byte("[" + strings.Repeat("1,", 32<<10))
		total := 0
		for total < n {
			k, err := w.Write(chunk[:min(len(chunk), n-total)])
			total += k
			if err != nil {
				break
			}
			chunk[0] = '1'
		}
		written <- total
	}
}

func rawAnswer(status int, contentType, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func queryResultCall(ctx context.Context, c *Client) error {
	body, err := c.QueryResult(ctx, "q-1", "1")
	if err == nil {
		body.Close()
	}
	return err
}

// TestHostileAnswers: answers that are not the API's (a proxy's HTML page with status 200,
// truncated JSON, another content type, 64 MB bodies) fail with a typed error that names the
// operation and shows the start of the body; nothing is buffered past the bound, and a send
// answered that way is ambiguous (KSeF took it, under an id the client never learnt).
func TestHostileAnswers(t *testing.T) {
	const huge = 64 << 20
	tests := []struct {
		name      string
		answer    func(written chan<- int) func(w http.ResponseWriter)
		call      func(context.Context, *Client) error
		tooLarge  bool
		ambiguous bool
		mention   string
	}{
		{name: "200 with an HTML page", call: statusCall, mention: "502 Bad Gateway",
			answer: func(chan<- int) func(http.ResponseWriter) { return htmlAnswer(http.StatusOK) }},
		{name: "200 with an HTML page to a send", call: sendCall, ambiguous: true, mention: "not JSON",
			answer: func(chan<- int) func(http.ResponseWriter) { return htmlAnswer(http.StatusOK) }},
		{name: "truncated JSON", call: statusCall, mention: "decoding",
			answer: func(chan<- int) func(http.ResponseWriter) {
				return rawAnswer(http.StatusOK, "application/json", `{"sessionInfo":{"status":{"code":10`)
			}},
		{name: "truncated JSON to a send", call: sendCall, ambiguous: true, mention: "decoding",
			answer: func(chan<- int) func(http.ResponseWriter) {
				return rawAnswer(http.StatusAccepted, "application/json", `{"id":"`)
			}},
		{name: "JSON as text/plain", call: statusCall, mention: "text/plain",
			answer: func(chan<- int) func(http.ResponseWriter) {
				return rawAnswer(http.StatusOK, "text/plain", `{"sessionInfo":{}}`)
			}},
		{name: "64 MB chunked", call: statusCall, tooLarge: true, mention: "more than 16777216 bytes",
			answer: func(w chan<- int) func(http.ResponseWriter) { return hugeAnswer(huge, false, w) }},
		{name: "64 MB declared", call: statusCall, tooLarge: true, mention: "Content-Length 67108864",
			answer: func(w chan<- int) func(http.ResponseWriter) { return hugeAnswer(huge, true, w) }},
		{name: "a result part that is an HTML page", call: queryResultCall, mention: "not a file",
			answer: func(chan<- int) func(http.ResponseWriter) { return htmlAnswer(http.StatusOK) }},
		{name: "a result part that is JSON", call: queryResultCall, mention: "not a file",
			answer: func(chan<- int) func(http.ResponseWriter) {
				return rawAnswer(http.StatusOK, "application/json", `{"status":"ok"}`)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			written := make(chan int, 1)
			s := &scripted{answers: []func(http.ResponseWriter){tc.answer(written)}}
			c, _ := newScriptedClient(t, s)
			err := tc.call(t.Context(), c)
			var ae *AnswerError
			if !errors.As(err, &ae) || !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("got %v, want an *AnswerError wrapping ErrBadAnswer", err)
			}
			if got := errors.Is(err, ErrAnswerTooLarge); got != tc.tooLarge {
				t.Errorf("ErrAnswerTooLarge: %v, want %v (%v)", got, tc.tooLarge, err)
			}
			if got := errors.Is(err, ErrAmbiguous); got != tc.ambiguous {
				t.Errorf("ErrAmbiguous: %v, want %v (%v)", got, tc.ambiguous, err)
			}
			if !strings.Contains(err.Error(), tc.mention) || len(err.Error()) > 600 {
				t.Errorf("error %q: want a short one mentioning %q", err, tc.mention)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("%d requests; a 2xx answer is not repeated by the client", n)
			}
			if tc.tooLarge {
				// The client stopped at its bound: the server could not write the rest
				// (loopback buffers hold a few MB more).
				select {
				case n := <-written:
					if n >= huge {
						t.Errorf("the server wrote all %d bytes: the client read the whole answer", n)
					}
				case <-time.After(10 * time.Second):
					t.Error("the server is still writing 10 s after the client gave up")
				}
			}
		})
	}
}
