package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// sendAccepted sends n copies of the sample (seller A, buyer B, third party C) with distinct
// numbers, one clock step apart, and returns their KSeF numbers and XML in order of storage.
func sendAccepted(t *testing.T, v *env, n int) ([]string, map[string][]byte) {
	t.Helper()
	s := v.open(tokA)
	base := readSample(t, "valid", sample)
	var ids []string
	xmls := make(map[string][]byte)
	for i := range n {
		xml := withNumber(t, base, fmt.Sprintf("FV/%d/2026", i+1))
		ids = append(ids, s.send(xml))
		xmls[ids[i]] = xml
		v.clock.Advance(time.Second)
	}
	v.settle()
	var nums []string
	byNum := make(map[string][]byte)
	for _, id := range ids {
		st := s.status(id)
		if st.Status.Code != 200 {
			t.Fatalf("invoice %s: %d %s", id, st.Status.Code, derefS(st.Status.Details))
		}
		nums = append(nums, *st.KsefNumber)
		byNum[*st.KsefNumber] = xmls[id]
	}
	s.close()
	return nums, byNum
}

type queryRun struct {
	id     string
	key    *kcrypto.SessionKey
	c      *ksefapi.ClientWithResponses
	status *ksefapi.KsefInvoiceQueryStatusResponse
}

func (v *env) query(token string, subject ksefapi.SubjectType, from, to time.Time) *queryRun {
	v.t.Helper()
	c := v.client(token)
	info, k := v.encInfo()
	resp, err := c.KsefInvoiceQueryStartWithResponse(context.Background(), ksefapi.KsefInvoiceQueryStartRequest{
		Range:          ksefapi.KsefInvoiceQueryStartRange{From: from, To: to},
		EncryptionInfo: info,
		SubjectType:    subject,
	})
	if err != nil {
		v.t.Fatal(err)
	}
	if resp.JSON200 == nil {
		v.t.Fatalf("query start: HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	q := &queryRun{id: resp.JSON200.QueryId, key: k, c: c}
	st, err := c.KsefInvoiceQueryStatusWithResponse(context.Background(), q.id)
	if err != nil {
		v.t.Fatal(err)
	}
	if st.JSON200 == nil {
		v.t.Fatalf("query status: HTTP %d %s", st.StatusCode(), st.Body)
	}
	q.status = st.JSON200
	return q
}

// download fetches, decrypts and unzips every part, checking packageSize.
func (q *queryRun) download(t *testing.T) (files map[string][]byte, meta []invoiceMetadata) {
	t.Helper()
	files = make(map[string][]byte)
	var total int64
	for _, p := range q.status.PartNumbers {
		resp, err := q.c.KsefInvoiceQueryResultWithResponse(context.Background(), q.id, p)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK {
			t.Fatalf("part %s: HTTP %d %s", p, resp.StatusCode(), resp.Body)
		}
		if ct := resp.HTTPResponse.Header.Get("Content-Type"); ct != "application/zip" {
			t.Errorf("content type %q", ct)
		}
		total += int64(len(resp.Body))
		plain, err := kcrypto.Decrypt(resp.Body, q.key.Key, q.key.IV)
		if err != nil {
			t.Fatalf("part %s: %v", p, err)
		}
		var m metadataFile
		for name, data := range unzipAll(t, plain) {
			if name == "_metadata.json" {
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				continue
			}
			files[name] = data
		}
		meta = append(meta, m.Invoices...)
	}
	if total != q.status.PackageSize {
		t.Errorf("packageSize %d, parts sum to %d", q.status.PackageSize, total)
	}
	return files, meta
}

func TestQueryRoundTrip(t *testing.T) {
	v := newEnv(t, nil)
	from := v.clock.Now().Add(-time.Hour)
	nums, byNum := sendAccepted(t, v, 3)
	to := v.clock.Now().Add(time.Hour)

	q := v.query(tokB, ksefapi.Subject2, from, to)
	if q.status.NumberOfInvoices != 3 || q.status.IsTruncated || len(q.status.PartNumbers) != 1 {
		t.Fatalf("status %+v", q.status)
	}
	files, meta := q.download(t)
	if len(files) != 3 || len(meta) != 3 {
		t.Fatalf("%d files, %d metadata entries", len(files), len(meta))
	}
	for i, num := range nums {
		if !bytes.Equal(files[num+".xml"], byNum[num]) {
			t.Errorf("%s.xml differs from what was sent", num)
		}
		m := meta[i]
		if m.KsefNumber != num || m.Seller.Nip != nipA || m.Buyer.Identifier.Value != nipB || m.InvoiceNumber != fmt.Sprintf("FV/%d/2026", i+1) ||
			m.InvoiceHash != kcrypto.SHA256Base64(byNum[num]) || m.PermanentStorageDate.IsZero() {
			t.Errorf("metadata %d: %+v", i, m)
		}
	}
	last := meta[2].PermanentStorageDate
	if q.status.LastPermanentStorageDate == nil || !q.status.LastPermanentStorageDate.Equal(last) {
		t.Errorf("lastPermanentStorageDate %v, want %v", q.status.LastPermanentStorageDate, last)
	}

	for _, tc := range []struct {
		token   string
		subject ksefapi.SubjectType
		want    int32
	}{
		{tokA, ksefapi.Subject1, 3},
		{tokB, ksefapi.Subject1, 0},
		{tokA, ksefapi.Subject2, 0},
		{tokC, ksefapi.Subject3, 3},
		{tokC, ksefapi.SubjectAuthorized, 0},
		{tokX, ksefapi.Subject2, 0},
	} {
		if got := v.query(tc.token, tc.subject, from, to).status.NumberOfInvoices; got != tc.want {
			t.Errorf("%s as %s: %d invoices, want %d", tc.token, tc.subject, got, tc.want)
		}
	}
	// The range is of permanent storage dates.
	if got := v.query(tokB, ksefapi.Subject2, last.Add(time.Nanosecond), to).status.NumberOfInvoices; got != 0 {
		t.Errorf("after the last storage date: %d", got)
	}
	if got := v.query(tokB, ksefapi.Subject2, last, last).status.NumberOfInvoices; got != 1 {
		t.Errorf("at the last storage date: %d", got)
	}
}

func TestQuerySeesOnlyStoredInvoices(t *testing.T) {
	v := newEnv(t, nil)
	s := v.open(tokA)
	s.send(readSample(t, "valid", sample))
	if err := v.e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.clock.Advance(testDelay) // accepted, not yet stored
	from, to := v.clock.Now().Add(-time.Hour), v.clock.Now().Add(time.Hour)
	if n := v.query(tokA, ksefapi.Subject1, from, to).status.NumberOfInvoices; n != 0 {
		t.Fatalf("%d invoices before permanent storage", n)
	}
	v.clock.Advance(testStorage)
	if n := v.query(tokA, ksefapi.Subject1, from, to).status.NumberOfInvoices; n != 1 {
		t.Fatalf("%d invoices after permanent storage", n)
	}
}

func TestQueryPartsAndTruncation(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.QueryMaxInvoices = 3
		c.QueryMaxPartSize = 8000 // the sample is 5.4 kB: one invoice per part
	})
	from := v.clock.Now().Add(-time.Hour)
	nums, byNum := sendAccepted(t, v, 5)
	to := v.clock.Now().Add(time.Hour)

	q := v.query(tokA, ksefapi.Subject1, from, to)
	if !q.status.IsTruncated || q.status.NumberOfInvoices != 3 || len(q.status.PartNumbers) != 3 {
		t.Fatalf("status %+v", q.status)
	}
	files, meta := q.download(t)
	if len(files) != 3 || len(meta) != 3 {
		t.Fatalf("%d files", len(files))
	}
	for _, num := range nums[:3] {
		if !bytes.Equal(files[num+".xml"], byNum[num]) {
			t.Errorf("%s missing or different", num)
		}
	}
	// Continuing from lastPermanentStorageDate gets the rest (with the overlap to deduplicate).
	next := v.query(tokA, ksefapi.Subject1, *q.status.LastPermanentStorageDate, to)
	if next.status.IsTruncated || next.status.NumberOfInvoices != 3 {
		t.Fatalf("continuation %+v", next.status)
	}
	files, _ = next.download(t)
	for _, num := range nums[2:] {
		if !bytes.Equal(files[num+".xml"], byNum[num]) {
			t.Errorf("continuation: %s missing", num)
		}
	}
}

func TestQueryErrorsAndLifetime(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.QueryDelay = 5 * time.Second
		c.QueryResultTTL = time.Hour
	})
	ctx := context.Background()
	c := v.client(tokA)
	info, _ := v.encInfo()
	now := v.clock.Now()
	for _, tc := range []struct {
		name string
		req  ksefapi.KsefInvoiceQueryStartRequest
		code ksef.Code
	}{
		{"reversed", ksefapi.KsefInvoiceQueryStartRequest{Range: ksefapi.KsefInvoiceQueryStartRange{From: now, To: now.Add(-time.Second)}, EncryptionInfo: info, SubjectType: ksefapi.Subject1}, ksef.CodeQueryParams},
		{"over 3 months", ksefapi.KsefInvoiceQueryStartRequest{Range: ksefapi.KsefInvoiceQueryStartRange{From: now, To: now.AddDate(0, 3, 1)}, EncryptionInfo: info, SubjectType: ksefapi.Subject1}, ksef.CodeQueryParams},
		{"no range", ksefapi.KsefInvoiceQueryStartRequest{EncryptionInfo: info, SubjectType: ksefapi.Subject1}, ksef.CodeQueryParams},
		{"subject", ksefapi.KsefInvoiceQueryStartRequest{Range: ksefapi.KsefInvoiceQueryStartRange{From: now, To: now}, EncryptionInfo: info, SubjectType: "subject9"}, ksef.CodeQueryParams},
		{"IV", ksefapi.KsefInvoiceQueryStartRequest{Range: ksefapi.KsefInvoiceQueryStartRange{From: now, To: now}, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: info.EncryptedKey, InitVector: b64([]byte{1})}, SubjectType: ksefapi.Subject1}, ksef.CodeAESIVLength},
		{"key", ksefapi.KsefInvoiceQueryStartRequest{Range: ksefapi.KsefInvoiceQueryStartRange{From: now, To: now}, EncryptionInfo: ksefapi.EncryptionInfo{EncryptedKey: b64(make([]byte, 256)), InitVector: info.InitVector}, SubjectType: ksefapi.Subject1}, ksef.CodeQueryInit},
	} {
		resp, err := c.KsefInvoiceQueryStartWithResponse(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(tc.name, func(t *testing.T) { wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), tc.code) })
	}
	// Exactly 3 months is allowed.
	start, err := c.KsefInvoiceQueryStartWithResponse(ctx, ksefapi.KsefInvoiceQueryStartRequest{
		Range: ksefapi.KsefInvoiceQueryStartRange{From: now.AddDate(0, -3, 0), To: now}, EncryptionInfo: info, SubjectType: ksefapi.Subject1})
	if err != nil || start.JSON200 == nil {
		t.Fatalf("%v %s", err, start.Body)
	}
	id := start.JSON200.QueryId

	// In progress: 503 with Retry-After.
	st, _ := c.KsefInvoiceQueryStatusWithResponse(ctx, id)
	wantError(t, http.StatusServiceUnavailable, st.Body, st.StatusCode(), ksef.CodeQueryStatus)
	if ra := st.HTTPResponse.Header.Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q", ra)
	}
	v.clock.Advance(5 * time.Second)
	st, _ = c.KsefInvoiceQueryStatusWithResponse(ctx, id)
	if st.JSON200 == nil || st.JSON200.NumberOfInvoices != 0 || len(st.JSON200.PartNumbers) != 0 || st.JSON200.LastPermanentStorageDate != nil {
		t.Fatalf("empty result: %s", st.Body)
	}
	res, _ := c.KsefInvoiceQueryResultWithResponse(ctx, id, "1")
	wantError(t, http.StatusNotFound, res.Body, res.StatusCode(), ksef.CodeQueryResult)
	st, _ = v.client(tokB).KsefInvoiceQueryStatusWithResponse(ctx, id)
	wantError(t, http.StatusNotFound, st.Body, st.StatusCode(), ksef.CodeQueryStatus)
	st, _ = c.KsefInvoiceQueryStatusWithResponse(ctx, "20260302-EX-0000000000-0000000000-00")
	wantError(t, http.StatusNotFound, st.Body, st.StatusCode(), ksef.CodeQueryStatus)

	v.clock.Advance(time.Hour)
	st, _ = c.KsefInvoiceQueryStatusWithResponse(ctx, id)
	e := wantError(t, http.StatusNotFound, st.Body, st.StatusCode(), ksef.CodeQueryStatus)
	if !strings.Contains(details(e), "wygasł") {
		t.Errorf("details %q", details(e))
	}
}

func TestQueryPartHoldsAtLeastOneInvoice(t *testing.T) {
	// A part size smaller than any invoice still makes progress: one invoice per part.
	v := newEnv(t, func(c *Config) { c.QueryMaxPartSize = 1 })
	from := v.clock.Now().Add(-time.Hour)
	sendAccepted(t, v, 4)
	q := v.query(tokA, ksefapi.Subject1, from, v.clock.Now().Add(time.Hour))
	if len(q.status.PartNumbers) != 4 {
		t.Fatalf("%d parts", len(q.status.PartNumbers))
	}
	for i, p := range q.status.PartNumbers {
		if p != strconv.Itoa(i+1) {
			t.Errorf("part %d is %q", i, p)
		}
	}
}
