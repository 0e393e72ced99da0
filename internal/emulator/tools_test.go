package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func ptr[T any](v T) *T { return &v }

func generateRequest() ksefapi.KsefInvoiceGenerateRequest {
	return ksefapi.KsefInvoiceGenerateRequest{
		InvoiceNumber: "FV/2026/03/001",
		IssueDate:     openapi_types.Date{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		Currency:      "PLN",
		Seller:        ksefapi.Party{Nip: ptr(nipA), Name: "Sprzedawca", Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Prosta 1"}},
		Buyer:         ksefapi.Party{Nip: ptr(nipB), Name: "Nabywca", Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Krzywa 2"}},
		Lines:         []ksefapi.InvoiceLine{{Name: "Usługa", Quantity: "3", UnitNetPrice: "19.99", VatRate: ksefapi.N23}},
	}
}

func TestGenerateThenSend(t *testing.T) {
	v := newEnv(t, nil)
	c := v.client(tokA)
	resp, err := c.KsefInvoiceGenerateWithResponse(context.Background(), generateRequest())
	if err != nil {
		t.Fatal(err)
	}
	g := resp.JSON200
	if g == nil {
		t.Fatalf("HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	xml := []byte(g.InvoiceData)
	if g.InvoiceVersion != ksefapi.V3 || g.InvoiceHash != kcrypto.SHA256Base64(xml) || g.InvoiceSize != int64(len(xml)) {
		t.Errorf("response %+v", g)
	}
	s := v.open(tokA)
	id := s.send(xml)
	v.settle()
	if st := s.status(id); st.Status.Code != 200 {
		t.Fatalf("generated invoice: %d %s", st.Status.Code, derefS(st.Status.Details))
	}

	bad := generateRequest()
	bad.Seller.Nip = nil
	resp, _ = c.KsefInvoiceGenerateWithResponse(context.Background(), bad)
	e := wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceInput)
	if details(e) == "" {
		t.Error("no details")
	}
}

func TestValidate(t *testing.T) {
	v := newEnv(t, nil)
	c := v.client(tokA)
	ctx := context.Background()
	xml := readSample(t, "valid", sample)
	resp, err := c.KsefInvoiceValidateWithBodyWithResponse(ctx, "text/xml", bytes.NewReader(xml))
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON200 == nil || !resp.JSON200.Valid || resp.JSON200.InvoiceVersion != ksefapi.V3 {
		t.Fatalf("HTTP %d %s", resp.StatusCode(), resp.Body)
	}
	want, err := fa3.Canonical(xml)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.JSON200.CanonicalForm, want) {
		t.Error("canonical form differs from fa3.Canonical")
	}

	for _, tc := range []struct {
		file   string
		code   ksef.Code
		detail string
	}{
		{"missing-invoice-number-p2.xml", ksef.CodeInvoiceFormat, "P_2"},
		{"seller-nip-nine-digits.xml", ksef.CodeInvoiceFormat, "689115292"},
		{"xxe-external-entity.xml", ksef.CodeInvoiceFormat, "not allowed"},
		{"fa2-namespace.xml", ksef.CodeInvoiceVersion, "FA(2)"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			resp, _ := c.KsefInvoiceValidateWithBodyWithResponse(ctx, "text/xml", bytes.NewReader(readSample(t, "invalid", tc.file)))
			e := wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), tc.code)
			if !strings.Contains(details(e), tc.detail) {
				t.Errorf("details %q lack %q", details(e), tc.detail)
			}
		})
	}
	big := append([]byte("<a>"), bytes.Repeat([]byte("x"), DefaultMaxInvoiceSize)...)
	resp, _ = c.KsefInvoiceValidateWithBodyWithResponse(ctx, "text/xml", bytes.NewReader(big))
	wantError(t, http.StatusRequestEntityTooLarge, resp.Body, resp.StatusCode(), ksef.CodeInvoiceSize)
}

func TestVisualize(t *testing.T) {
	v := newEnv(t, nil)
	c := v.client(tokA)
	ctx := context.Background()
	xml := string(readSample(t, "valid", sample))
	num := ksef.NewNumber(nipA, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 0x1234)
	for _, tc := range []struct {
		format ksefapi.OutputFormat
		lang   ksefapi.OutputLanguage
		ctype  string
		magic  string
	}{
		{ksefapi.Pdf, ksefapi.Pl, "application/pdf", "%PDF"},
		{ksefapi.Html, ksefapi.PlEn, "text/html", "<"},
		{ksefapi.Html, ksefapi.En, "text/html", "<"},
	} {
		resp, err := c.KsefInvoiceVisualizeWithResponse(ctx, ksefapi.KsefInvoiceVisualizeRequest{
			InvoiceData: xml, OutputFormat: tc.format, OutputLanguage: tc.lang, InvoiceKsefNumber: &num, Offline: ptr(true),
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusOK {
			t.Fatalf("%s/%s: HTTP %d %s", tc.format, tc.lang, resp.StatusCode(), resp.Body)
		}
		if ct := resp.HTTPResponse.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("content type %q", ct)
		}
		if !bytes.HasPrefix(bytes.TrimSpace(resp.Body), []byte(tc.magic)) {
			t.Errorf("%s: body starts %q", tc.format, resp.Body[:min(20, len(resp.Body))])
		}
		if tc.format == ksefapi.Html && !bytes.Contains(resp.Body, []byte(num)) {
			t.Errorf("the HTML lacks the KSeF number")
		}
	}
	resp, _ := c.KsefInvoiceVisualizeWithResponse(ctx, ksefapi.KsefInvoiceVisualizeRequest{InvoiceData: "<nope/>", OutputFormat: ksefapi.Html, OutputLanguage: ksefapi.Pl})
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceVisualize)
	resp, _ = c.KsefInvoiceVisualizeWithResponse(ctx, ksefapi.KsefInvoiceVisualizeRequest{InvoiceData: xml, OutputFormat: "docx", OutputLanguage: ksefapi.Pl})
	wantError(t, http.StatusBadRequest, resp.Body, resp.StatusCode(), ksef.CodeInvoiceInput)
}

func TestServiceEndpoints(t *testing.T) {
	v := newEnv(t, nil)
	code, h, body := v.do(http.MethodGet, "/openapi.yaml", "", "", nil)
	if code != http.StatusOK || !bytes.Equal(body, ksefapi.Spec) {
		t.Errorf("openapi.yaml: %d", code)
	}
	code, h, body = v.do(http.MethodGet, "/docs", "", "", nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("docs: %d %s", code, h.Get("Content-Type"))
	}
	for _, op := range ksef.Operations() {
		if !bytes.Contains(body, []byte(`id="`+string(op)+`"`)) {
			t.Errorf("docs lack %s", op)
		}
	}
	for _, s := range []string{"KsefInvoiceSendRequest", "InvoiceInfo", "Error", "/upload/"} {
		if !bytes.Contains(body, []byte(s)) {
			t.Errorf("docs lack %s", s)
		}
	}
	if bytes.Contains(body, []byte("<script src=")) || bytes.Contains(body, []byte("https://cdn")) {
		t.Error("docs fetch something from outside")
	}
	if code, _, body = v.do(http.MethodGet, "/healthz", "", "", nil); code != http.StatusOK {
		t.Errorf("healthz: %d %s", code, body)
	}
	v.do(http.MethodGet, "/v2/public-key", "", "", nil)
	v.do(http.MethodGet, "/v2/sessions/x", tokA, "", nil)
	code, _, body = v.do(http.MethodGet, "/emulator/stats", "", "", nil)
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil || code != http.StatusOK {
		t.Fatalf("stats: %d %v", code, err)
	}
	if st.Requests[ksef.OpPublicKey][200] != 1 || st.Requests[ksef.OpSessionStatus][404] != 1 {
		t.Errorf("stats %+v", st.Requests)
	}
	v.e.ResetStats()
	if len(v.e.Stats().Requests) != 0 {
		t.Error("ResetStats kept counters")
	}
	code, _, body = v.do(http.MethodGet, "/nowhere", "", "", nil)
	if code != http.StatusNotFound || !bytes.Contains(body, []byte(`"code":"404"`)) {
		t.Errorf("unknown path: %d %s", code, body)
	}
}
