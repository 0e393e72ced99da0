package emulator

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// TestHostileAnswers: a context's calls of the chosen operation get the hostile answer for as
// many times as asked, then the real one; the pipeline's client sees each as the defect it is.
func TestHostileAnswers(t *testing.T) {
	tests := []struct {
		answer  string
		times   int
		wantErr error // nil: the client gets through (it retries a 502)
	}{
		{answer: "html-502", times: 1},
		{answer: "html-200", times: 1, wantErr: ksef.ErrBadAnswer},
		{answer: "truncated-json", times: 1, wantErr: ksef.ErrBadAnswer},
		{answer: "wrong-content-type", times: 1, wantErr: ksef.ErrBadAnswer},
		{answer: "huge", times: 1, wantErr: ksef.ErrAnswerTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			v := newEnv(t, func(c *Config) {
				c.Faults.Hostile = []Hostile{{Context: nipA, Op: ksef.OpInvoiceQueryStart, Answer: tt.answer, Times: tt.times}}
			})
			c := v.ksefClient()
			start := func() error {
				info, key, err := c.NewEncryption(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer key.Zero()
				_, err = c.StartQuery(context.Background(), ksefapi.KsefInvoiceQueryStartRequest{
					Range:          ksefapi.KsefInvoiceQueryStartRange{From: time.Now().Add(-time.Hour), To: time.Now()},
					EncryptionInfo: info, SubjectType: ksefapi.Subject2,
				})
				return err
			}
			if err := start(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("first query: %v, want %v", err, tt.wantErr)
			}
			if err := start(); err != nil {
				t.Fatalf("after the hostile answers: %v", err)
			}
			if got := v.e.Stats().Faults["hostile"]; got != tt.times {
				t.Errorf("%d hostile answers counted, want %d", got, tt.times)
			}
			if got := v.e.HostileServed(); len(got) != 1 || got[0] != tt.times {
				t.Errorf("served %v, want [%d]", got, tt.times)
			}
		})
	}
}

// TestHostilePackage: a context's query gets one part of one made-up invoice whose ZIP has the
// chosen defect, under a packageSize that matches it.
func TestHostilePackage(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Faults.Hostile = []Hostile{{Context: nipA, Op: ksef.OpInvoiceQueryResult, Answer: "zip-traversal"}}
	})
	q := v.query(tokA, ksefapi.Subject2, time.Now().Add(-time.Hour), time.Now())
	if len(q.status.PartNumbers) == 0 {
		t.Fatalf("status %+v: no part", q.status)
	}
	resp, err := q.c.KsefInvoiceQueryResultWithResponse(context.Background(), q.id, q.status.PartNumbers[0])
	if err != nil || resp.StatusCode() != http.StatusOK {
		t.Fatalf("part: %v %d", err, resp.StatusCode())
	}
	if int64(len(resp.Body)) != q.status.PackageSize || q.status.NumberOfInvoices != 1 {
		t.Errorf("part of %d bytes, status %+v", len(resp.Body), q.status)
	}
	plain, err := kcrypto.Decrypt(resp.Body, q.key.Key, q.key.IV)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if name := zr.File[0].Name; name[:6] != "../../" {
		t.Errorf("first entry %q, want one climbing out", name)
	}
}

func TestHostileChecked(t *testing.T) {
	for _, h := range []Hostile{
		{Context: nipA, Op: ksef.OpInvoiceSend, Answer: "zip-bomb"},
		{Context: nipA, Op: ksef.OpInvoiceSend, Answer: "teapot"},
		{Context: "123", Op: ksef.OpInvoiceSend, Answer: "huge"},
		{Context: nipA, Op: "nope", Answer: "huge"},
		{Context: nipA, Op: ksef.OpInvoiceSend, Answer: "huge", Times: -1},
	} {
		if err := (&Faults{Hostile: []Hostile{h}}).Check(); err == nil {
			t.Errorf("%+v: no error", h)
		}
	}
	if err := (&Faults{Hostile: []Hostile{{Context: nipA, Op: ksef.OpInvoiceQueryResult, Answer: "zip-bomb"}}}).Check(); err != nil {
		t.Error(err)
	}
}
