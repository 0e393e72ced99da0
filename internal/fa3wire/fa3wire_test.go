package fa3wire

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

func ptr[T any](v T) *T { return &v }

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

func wireDay(s string) openapi_types.Date { return openapi_types.Date{Time: day(s)} }

// TestRequest converts a wire request with every field set, and one with only the required
// fields.
func TestRequest(t *testing.T) {
	typ := ksefapi.KOR
	wire := ksefapi.KsefInvoiceGenerateRequest{
		InvoiceType: &typ, InvoiceNumber: "FK/1", IssueDate: wireDay("2026-03-01"), SaleDate: ptr(wireDay("2026-02-28")),
		PlaceOfIssue: ptr("Warszawa"), Currency: "EUR", ExchangeRate: ptr("4.2618"), ExemptionBasis: ptr("art. 113"),
		SystemInfo: ptr("ERP"), CashAccounting: ptr(true), ReverseCharge: ptr(false), SplitPayment: ptr(true),
		Seller: ksefapi.Party{Nip: ptr("5261040828"), Name: "S", Email: ptr("s@example.com"), Phone: ptr("1"),
			Address: ksefapi.Address{CountryCode: "PL", Line1: "a", Line2: ptr("b")}},
		Buyer: ksefapi.Party{EuVatId: ptr("DE123456789"), ForeignId: ptr("X"), Name: "B",
			Address: ksefapi.Address{CountryCode: "DE", Line1: "c"}},
		Lines: []ksefapi.InvoiceLine{{Name: "n", Unit: ptr("h"), Quantity: "2", UnitNetPrice: "3.5", VatRate: ksefapi.Zw, Gtu: ptr("GTU_06")}},
		Correction: &ksefapi.CorrectedInvoice{Number: "F/1", IssueDate: wireDay("2026-02-01"),
			KsefNumber: ptr("5265877635-20250826-0100001AF629-AF"), Reason: ptr("rabat")},
		Payment: &ksefapi.Payment{Paid: ptr(true), PaidDate: ptr(wireDay("2026-03-02")), DueDate: ptr(wireDay("2026-03-15")),
			Method: ptr(6), BankAccount: ptr("PL61109010140000071219812874")},
	}
	want := fa3.InvoiceRequest{
		Type: fa3.TypeKOR, Number: "FK/1", IssueDate: day("2026-03-01"), SaleDate: day("2026-02-28"),
		PlaceOfIssue: "Warszawa", Currency: "EUR", ExchangeRate: "4.2618", ExemptionBasis: "art. 113",
		SystemInfo: "ERP", CashAccounting: true, SplitPayment: true,
		Seller: fa3.Party{NIP: "5261040828", Name: "S", Email: "s@example.com", Phone: "1",
			Address: fa3.Address{CountryCode: "PL", Line1: "a", Line2: "b"}},
		Buyer: fa3.Party{EUVatID: "DE123456789", ForeignID: "X", Name: "B", Address: fa3.Address{CountryCode: "DE", Line1: "c"}},
		Lines: []fa3.Line{{Name: "n", Unit: "h", Quantity: "2", UnitNetPrice: "3.5", VATRate: "zw", GTU: "GTU_06"}},
		Correction: &fa3.Correction{Number: "F/1", IssueDate: day("2026-02-01"),
			KSeFNumber: "5265877635-20250826-0100001AF629-AF", Reason: "rabat"},
		Payment: &fa3.Payment{Paid: true, PaidDate: day("2026-03-02"), DueDate: day("2026-03-15"), Method: 6,
			BankAccount: "PL61109010140000071219812874"},
	}
	if got := Request(wire); !reflect.DeepEqual(got, want) {
		t.Errorf("Request:\n got %+v\nwant %+v", got, want)
	}

	min := ksefapi.KsefInvoiceGenerateRequest{InvoiceNumber: "F/2", IssueDate: wireDay("2026-03-01"), Currency: "PLN",
		Seller: ksefapi.Party{Name: "S"}, Buyer: ksefapi.Party{Name: "B"}}
	wantMin := fa3.InvoiceRequest{Number: "F/2", IssueDate: day("2026-03-01"), Currency: "PLN",
		Seller: fa3.Party{Name: "S"}, Buyer: fa3.Party{Name: "B"}}
	if got := Request(min); !reflect.DeepEqual(got, wantMin) {
		t.Errorf("Request (required fields only):\n got %+v\nwant %+v", got, wantMin)
	}
}

// TestGenerate: the wire request gives the same document as its domain request.
func TestGenerate(t *testing.T) {
	wire := ksefapi.KsefInvoiceGenerateRequest{InvoiceNumber: "FV/1", IssueDate: wireDay("2026-03-01"), Currency: "PLN",
		Seller: ksefapi.Party{Nip: ptr("5261040828"), Name: "S", Address: ksefapi.Address{CountryCode: "PL", Line1: "a"}},
		Buyer:  ksefapi.Party{Nip: ptr("7740001454"), Name: "B", Address: ksefapi.Address{CountryCode: "PL", Line1: "b"}},
		Lines:  []ksefapi.InvoiceLine{{Name: "n", Quantity: "3", UnitNetPrice: "19.99", VatRate: ksefapi.N23}},
	}
	clock := fa3.WithClock(func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) })
	a, err := Generate(wire, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fa3.Generate(Request(wire), clock)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Contains(a, []byte("<P_15>73.76</P_15>")) {
		t.Errorf("Generate:\n%s\nfa3.Generate:\n%s", a, b)
	}
}
