package emulator

import (
	"bytes"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// garbageBodies are request bodies no operation can make sense of, or only partly.
func garbageBodies(t *testing.T, sessionID string) []string {
	rng := mrand.New(mrand.NewPCG(7, 7))
	random := make([]byte, 2048)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	return []string{
		"",
		"{",
		"null",
		"[]",
		"true",
		`"string"`,
		`{"a":`,
		string(random),
		"\xff\xfe\x00{}",
		deep,
		`{"invoiceVersion":5,"encryptionInfo":"x"}`,
		`{"invoiceVersion":"v3","encryptionInfo":{"encryptedKey":"","initVector":""}}`,
		`{"invoiceVersion":"v3","encryptionInfo":{"encryptedKey":"AAAA","initVector":"AAAAAAAAAAAAAAAAAAAAAA=="},"offline":"yes","batchInfo":{"batchSize":-5,"batchHash":1,"batchParts":[{}]}}`,
		`{"invoiceVersion":"v3","encryptionInfo":{"encryptedKey":"AAAA","initVector":"AAAA"},"offline":false,"batchInfo":{"batchSize":1e30,"batchHash":"","batchParts":null}}`,
		`{"sessionId":"` + sessionID + `","encrypted":{"encryptedInvoice":"AAAA","invoiceHash":"AAAA","invoiceSize":-1}}`,
		`{"sessionId":"` + sessionID + `","encrypted":{"encryptedInvoice":"AAAAAAAAAAAAAAAAAAAAAA==","invoiceHash":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","invoiceSize":7}}`,
		`{"sessionId":"` + sessionID + `","encrypted":{"encryptedInvoice":12,"invoiceHash":null}}`,
		`{"range":{"from":"yesterday","to":"2026-13-45T99:00:00Z"},"subjectType":"subject1"}`,
		`{"range":{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"},"subjectType":"subject1","encryptionInfo":{"encryptedKey":"!!","initVector":"!!"}}`,
		`{"invoiceNumber":"x","issueDate":"2026-01-01","currency":"PLN","seller":{},"buyer":{},"lines":[{}]}`,
		`{"invoiceNumber":"","issueDate":"nope","currency":"","seller":{"nip":"1"},"buyer":{"nip":"x"},"lines":[{"quantity":"-1","unitNetPrice":"abc","vatRate":"99"}]}`,
		`{"invoiceNumber":"x","issueDate":"2026-01-01","currency":"PLN","invoiceType":"KOR","seller":{"name":"S","nip":"1234567890","address":{"countryCode":"PL","line1":"a"}},"buyer":{"name":"B","address":{"countryCode":"PL","line1":"b"}},"lines":[{"name":"l","quantity":"1","unitNetPrice":"1","vatRate":"23"}]}`,
		`{"invoiceData":"<Faktura/>","outputFormat":"pdf","outputLanguage":"pl"}`,
		`{"invoiceData":"\u0000\u0001","outputFormat":"html","outputLanguage":"xx"}`,
		`{"invoiceData":"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>","outputFormat":"html","outputLanguage":"en"}`,
		`<?xml version="1.0"?><Faktura xmlns="http://crd.gov.pl/wzor/2025/06/25/13775/"></Faktura>`,
		"<a>" + strings.Repeat("<b>", 5000),
		strings.Repeat("A", 3<<20),
	}
}

var garbageRoutes = []struct{ method, path string }{
	{http.MethodGet, "/v2/public-key"},
	{http.MethodGet, "/v2/sessions/{s}"},
	{http.MethodGet, "/v2/sessions/{s}/close"},
	{http.MethodGet, "/v2/sessions/{s}/upo"},
	{http.MethodGet, "/v2/sessions/{s}/invoices"},
	{http.MethodGet, "/v2/invoices/status/{s}"},
	{http.MethodGet, "/v2/invoices/ksef/{s}"},
	{http.MethodGet, "/v2/queries/{s}"},
	{http.MethodGet, "/v2/queries/{s}/parts/{s}"},
	{http.MethodPost, "/v2/sessions/online"},
	{http.MethodPost, "/v2/sessions/batch"},
	{http.MethodPost, "/v2/invoices/send"},
	{http.MethodPost, "/v2/invoices/generate"},
	{http.MethodPost, "/v2/invoices/validate"},
	{http.MethodPost, "/v2/queries"},
	{http.MethodPost, "/v2/invoices/visualize"},
	{http.MethodPut, "/upload/{s}/1"},
	{http.MethodDelete, "/v2/sessions/{s}"},
	{http.MethodGet, "/v3/nothing"},
}

func TestGarbageNeverGets5xx(t *testing.T) {
	if testing.Short() {
		t.Skip("many requests")
	}
	v := newEnv(t, nil)
	s := v.open(tokA)
	pkg := v.pack(zipOf(t, invoicesOf(t, 1)), 1)
	batch := v.openBatch(tokA, pkg.request())
	ids := []string{s.id, batch.Id, "x", "%00", "..%2F..%2Fetc", strings.Repeat("z", 300), "%C3%28", "6891152920-20260302-000000000000-00", "-1"}
	bodies := garbageBodies(t, s.id)
	checked := 0
	for _, r := range garbageRoutes {
		for i, id := range ids {
			path := strings.ReplaceAll(r.path, "{s}", id)
			for j, body := range bodies {
				// Path garbage with one body, body garbage with two paths: enough coverage.
				if i > 1 && j > 0 {
					continue
				}
				for _, ct := range []string{"application/json", "text/xml"} {
					if ct == "text/xml" && j%3 != 0 {
						continue
					}
					code, _, resp := v.do(r.method, path, tokA, ct, strings.NewReader(body))
					checked++
					if code >= 500 {
						t.Fatalf("%s %s with body %d (%.40q): HTTP %d %s", r.method, path, j, body, code, resp)
					}
					if code >= 400 {
						var e ksefapi.Error
						if err := json.Unmarshal(resp, &e); err != nil || e.Code == "" || e.Description == "" {
							t.Fatalf("%s %s body %d: HTTP %d is not an Error: %q", r.method, path, j, code, resp)
						}
						if n, err := strconv.Atoi(e.Code); err != nil || (!ksef.Code(n).Known() && n != 404) {
							t.Fatalf("%s %s: code %q is not a seed code", r.method, path, e.Code)
						}
					}
				}
			}
		}
	}
	if p := v.e.Stats().Panics; p != 0 {
		t.Fatalf("%d panics", p)
	}
	t.Logf("%d garbage requests, none answered 5xx", checked)
}

func TestPanicAnswers500Error(t *testing.T) {
	v := newEnv(t, nil)
	h := v.e.outer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).op = ksef.OpInvoiceSend
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/invoices/send", nil))
	wantError(t, http.StatusInternalServerError, rec.Body.Bytes(), rec.Code, ksef.CodeInvoiceSend)
	if bytes.Contains(rec.Body.Bytes(), []byte("boom")) {
		t.Error("the panic value leaks into the answer")
	}
	st := v.e.Stats()
	if st.Panics != 1 || st.Requests[ksef.OpInvoiceSend][500] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func FuzzRequestBodies(f *testing.F) {
	for _, b := range []string{"{}", `{"sessionId":"x"}`, `{"invoiceVersion":"v3"}`, "<a/>", `{"range":{}}`} {
		f.Add(uint8(0), b)
	}
	v := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := garbageRoutes[int(route)%len(garbageRoutes)]
		code, _, resp := v.doT(t, r.method, strings.ReplaceAll(r.path, "{s}", "x"), tokA, "application/json", strings.NewReader(body))
		if code >= 500 {
			t.Fatalf("%s %s: HTTP %d %s", r.method, r.path, code, resp)
		}
	})
}
