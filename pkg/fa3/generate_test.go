package fa3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

var fixedClock = WithClock(func() time.Time { return time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC) })

func day(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func baseRequest() InvoiceRequest {
	return InvoiceRequest{
		Number:       "FV/2026/03/001",
		IssueDate:    day("2026-03-01"),
		SaleDate:     day("2026-02-28"),
		PlaceOfIssue: "Warszawa",
		Currency:     "PLN",
		Seller: Party{
			NIP:     "5261040828",
			Name:    "Sprzedawca Sp. z o.o.",
			Address: Address{CountryCode: "PL", Line1: "ul. Prosta 1", Line2: "00-001 Warszawa"},
			Email:   "biuro@example.com",
		},
		Buyer: Party{
			NIP:     "7740001454",
			Name:    "Nabywca S.A. & Synowie <test>",
			Address: Address{CountryCode: "PL", Line1: "ul. Krzywa 2"},
			Phone:   "+48 22 123 45 67",
		},
		Lines: []Line{
			{Name: "Usługa programistyczna", Unit: "h", Quantity: "3", UnitNetPrice: "19.99", VATRate: "23"},
		},
	}
}

func TestGenerateComputesTotals(t *testing.T) {
	req := baseRequest()
	req.Lines = []Line{
		{Name: "A", Quantity: "3", UnitNetPrice: "19.99", VATRate: "23"},        // 59.97
		{Name: "B", Quantity: "0.1", UnitNetPrice: "0.3", VATRate: "23"},        // 0.03
		{Name: "C", Quantity: "1.5", UnitNetPrice: "0.333", VATRate: "8"},       // 0.4995 -> 0.50
		{Name: "D", Quantity: "2", UnitNetPrice: "10.005", VATRate: "5"},        // 20.01
		{Name: "E", Quantity: "1", UnitNetPrice: "100", VATRate: "zw"},          // 100.00
		{Name: "F", Quantity: "7", UnitNetPrice: "0.10000001", VATRate: "0 KR"}, // 0.70000007 -> 0.70
	}
	out, err := Generate(req, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f := inv.Fa
	// 23%: net 60.00, VAT 13.80; 8%: 0.50, 0.04; 5%: 20.01, 1.00 (1.0005)
	want := map[string]string{
		"P_13_1": "60.00", "P_14_1": "13.80",
		"P_13_2": "0.50", "P_14_2": "0.04",
		"P_13_3": "20.01", "P_14_3": "1.00",
		"P_13_7": "100.00", "P_13_6_1": "0.70",
		"P_15":  "196.05",
		"line3": "0.50",
	}
	got := map[string]string{
		"P_13_1": f.P_13_1, "P_14_1": f.P_14_1, "P_13_2": f.P_13_2, "P_14_2": f.P_14_2,
		"P_13_3": f.P_13_3, "P_14_3": f.P_14_3, "P_13_7": f.P_13_7, "P_13_6_1": f.P_13_6_1,
		"P_15": f.P_15, "line3": f.FaWiersz[2].P_11,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if f.Adnotacje.Zwolnienie.P_19 != "1" || f.Adnotacje.Zwolnienie.P_19A == "" {
		t.Errorf("exempt line without P_19/P_19A: %+v", f.Adnotacje.Zwolnienie)
	}
	if inv.Naglowek.DataWytworzeniaFa != "2026-03-01T10:30:00Z" {
		t.Errorf("DataWytworzeniaFa = %q", inv.Naglowek.DataWytworzeniaFa)
	}
	if inv.Podmiot2.DaneIdentyfikacyjne.Nazwa != "Nabywca S.A. & Synowie <test>" {
		t.Errorf("buyer name = %q", inv.Podmiot2.DaneIdentyfikacyjne.Nazwa)
	}
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("no XML declaration: %.60s", out)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(baseRequest(), fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(baseRequest(), fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same request and clock gave different output")
	}
}

// lineSum recomputes P_15 from the request independently of Generate: per
// line rounding, then VAT per rate on the rounded sums.
func lineSum(t *testing.T, req InvoiceRequest) string {
	t.Helper()
	nets := map[string]*big.Rat{}
	for _, l := range req.Lines {
		q, _ := new(big.Rat).SetString(l.Quantity)
		p, _ := new(big.Rat).SetString(l.UnitNetPrice)
		v, _ := new(big.Rat).SetString(new(big.Rat).Mul(q, p).FloatString(2))
		if nets[l.VATRate] == nil {
			nets[l.VATRate] = new(big.Rat)
		}
		nets[l.VATRate].Add(nets[l.VATRate], v)
	}
	pct := map[string]int64{"23": 23, "22": 22, "8": 8, "7": 7, "5": 5, "4": 4, "3": 3}
	sum := new(big.Rat)
	for rate, n := range nets {
		sum.Add(sum, n)
		if p := pct[rate]; p > 0 {
			v, _ := new(big.Rat).SetString(new(big.Rat).Mul(n, big.NewRat(p, 100)).FloatString(2))
			sum.Add(sum, v)
		}
	}
	return sum.FloatString(2)
}

func TestGenerateRoundTripTable(t *testing.T) {
	v := newXSDValidator(t)
	rates := []string{"23", "22", "8", "7", "5", "4", "3",
		"0 KR", "0 WDT", "0 EX", "zw", "oo", "np I", "np II"}
	types := []string{TypeVAT, TypeKOR, TypeZAL, TypeROZ, TypeUPR, TypeKORZAL, TypeKORROZ}
	buyers := map[string]func(*Party){
		"pl":     func(p *Party) {},
		"eu":     func(p *Party) { p.NIP = ""; p.EUVatID = "DE123456789"; p.Address.CountryCode = "DE" },
		"non-eu": func(p *Party) { p.NIP = ""; p.ForeignID = "98-7654321"; p.Address.CountryCode = "US" },
		"no-id":  func(p *Party) { p.NIP = "" },
	}
	payments := map[string]*Payment{
		"none":     nil,
		"transfer": {Method: 6, DueDate: day("2026-03-15"), BankAccount: "PL61 1090 1014 0000 0712 1981 2874"},
		"paid":     {Method: 2, Paid: true},
	}
	n := 0
	for ti, typ := range types {
		for bi, buyerName := range []string{"pl", "eu", "non-eu", "no-id"} {
			for _, payName := range []string{"none", "transfer", "paid"} {
				for ri, rate := range rates {
					// Keep the table small: every type meets every rate, buyer and payment, not every combination.
					if (ti+bi+ri)%3 != 0 {
						continue
					}
					n++
					req := baseRequest()
					req.Type = typ
					req.Number = fmt.Sprintf("T/%d", n)
					buyers[buyerName](&req.Buyer)
					req.Payment = payments[payName]
					sign := ""
					if typ == TypeKOR || typ == TypeKORZAL || typ == TypeKORROZ {
						sign = "-"
						req.Correction = &Correction{IssueDate: day("2026-02-01"), Number: "FV/2026/02/007", Reason: "rabat"}
						if n%2 == 0 {
							req.Correction.KSeFNumber = "5265877635-20250826-0100001AF629-AF"
						}
					}
					if buyerName != "pl" && n%2 == 1 {
						req.Currency = "EUR"
					}
					req.Lines = []Line{
						{Name: "Towar " + string(rate), Unit: "szt.", Quantity: sign + "2.5", UnitNetPrice: "40.13", VATRate: rate, GTU: "GTU_06"},
						{Name: "Usługa", Quantity: "1", UnitNetPrice: "0.01", VATRate: rate},
						{Name: "Drugi towar 23%", Quantity: "3", UnitNetPrice: "19.99", VATRate: "23"},
					}
					if rate == "22" {
						req.Lines[2].VATRate = "22"
					}
					name := fmt.Sprintf("%s/%s/%s/%s", typ, buyerName, payName, rate)
					t.Run(name, func(t *testing.T) {
						opts := []GenerateOption{fixedClock}
						if req.Currency == "EUR" {
							opts = append(opts, WithExchangeRate("4.2618"))
						}
						out, err := Generate(req, opts...)
						if err != nil {
							t.Fatal(err)
						}
						res, err := v.Validate(context.Background(), out)
						if err != nil {
							t.Fatalf("XSD: %v\n%s", err, out)
						}
						inv := res.Invoice
						if err := CheckSemantics(inv); err != nil {
							t.Fatalf("semantics: %v\n%s", err, out)
						}
						if got, want := inv.Fa.P_15, lineSum(t, req); got != want {
							t.Errorf("P_15 = %s, want %s", got, want)
						}
						if inv.InvoiceType() != string(typ) || inv.InvoiceNumber() != req.Number || inv.SellerNIP() != req.Seller.NIP || inv.IssueDate() != "2026-03-01" {
							t.Errorf("header fields: %s %s %s %s", inv.InvoiceType(), inv.InvoiceNumber(), inv.SellerNIP(), inv.IssueDate())
						}
						if buyerName == "pl" && inv.BuyerNIP() != req.Buyer.NIP {
							t.Errorf("BuyerNIP = %q", inv.BuyerNIP())
						}
						advance := typ == TypeZAL || typ == TypeKORZAL
						if advance != (inv.Fa.Zamowienie != nil) || advance == (len(inv.Fa.FaWiersz) == 3) {
							t.Errorf("advance %v: Zamowienie %v, %d lines", advance, inv.Fa.Zamowienie != nil, len(inv.Fa.FaWiersz))
						}
						if req.Currency == "EUR" && inv.Fa.P_14_1 != "" && inv.Fa.P_14_1W == "" {
							t.Error("foreign currency invoice without P_14_1W")
						}
						if rate == "oo" && inv.Fa.Adnotacje.P_18 != "1" {
							t.Error("reverse charge line without P_18")
						}
					})
				}
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d cases", n)
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*InvoiceRequest)
	}{
		{"no lines", func(r *InvoiceRequest) { r.Lines = nil }},
		{"no number", func(r *InvoiceRequest) { r.Number = " " }},
		{"no issue date", func(r *InvoiceRequest) { r.IssueDate = time.Time{} }},
		{"bad seller NIP", func(r *InvoiceRequest) { r.Seller.NIP = "689115292" }},
		{"no seller NIP", func(r *InvoiceRequest) { r.Seller.NIP = "" }},
		{"bad buyer NIP", func(r *InvoiceRequest) { r.Buyer.NIP = "0123456789" }},
		{"bad EU VAT id", func(r *InvoiceRequest) { r.Buyer.NIP = ""; r.Buyer.EUVatID = "US123" }},
		{"bad quantity", func(r *InvoiceRequest) { r.Lines[0].Quantity = "1,5" }},
		{"too precise quantity", func(r *InvoiceRequest) { r.Lines[0].Quantity = "1.1234567" }},
		{"bad price", func(r *InvoiceRequest) { r.Lines[0].UnitNetPrice = "1e3" }},
		{"bad rate", func(r *InvoiceRequest) { r.Lines[0].VATRate = "19" }},
		{"mixed 23 and 22", func(r *InvoiceRequest) {
			r.Lines = append(r.Lines, Line{Name: "x", Quantity: "1", UnitNetPrice: "1", VATRate: "22"})
		}},
		{"bad GTU", func(r *InvoiceRequest) { r.Lines[0].GTU = "GTU_14" }},
		{"KOR without correction", func(r *InvoiceRequest) { r.Type = TypeKOR }},
		{"correction on VAT", func(r *InvoiceRequest) {
			r.Correction = &Correction{IssueDate: day("2026-01-01"), Number: "1"}
		}},
		{"bad KSeF number", func(r *InvoiceRequest) {
			r.Type = TypeKOR
			r.Correction = &Correction{IssueDate: day("2026-01-01"), Number: "1", KSeFNumber: "210415750-20250310-FF4861C9CC3F-BA"}
		}},
		{"bad payment method", func(r *InvoiceRequest) { r.Payment = &Payment{Method: 8} }},
		{"short bank account", func(r *InvoiceRequest) { r.Payment = &Payment{BankAccount: "123"} }},
		{"bad currency", func(r *InvoiceRequest) { r.Currency = "zł" }},
		{"bad type", func(r *InvoiceRequest) {
			r.Type = string("PRO")
		}},
		{"bad country", func(r *InvoiceRequest) { r.Buyer.Address.CountryCode = "Polska" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			tt.mutate(&req)
			out, err := Generate(req, fixedClock)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest\n%s", err, out)
			}
		})
	}
	if _, err := Generate(baseRequest(), fixedClock, WithExchangeRate("-1")); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("negative exchange rate: %v", err)
	}
}

func TestGenerateWithValidator(t *testing.T) {
	v := newXSDValidator(t)
	if _, err := Generate(baseRequest(), fixedClock, WithValidator(v)); err != nil {
		t.Fatal(err)
	}
	// A clock before the schema's minimum DataWytworzeniaFa yields an
	// invalid document, which the validator catches.
	old := WithClock(func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) })
	_, err := Generate(baseRequest(), old, WithValidator(v))
	if KindOf(err) != KindSchema || !strings.Contains(err.Error(), "DataWytworzeniaFa") {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerateTakesRateBasisAndPaidDateFromTheRequest(t *testing.T) {
	req := baseRequest()
	req.Currency = "EUR"
	req.ExchangeRate = "4.2500"
	req.ExemptionBasis = "art. 113 ust. 1 ustawy o VAT"
	req.Lines = append(req.Lines, Line{Name: "Usługa zwolniona", Quantity: "1", UnitNetPrice: "10", VATRate: "zw"})
	req.Payment = &Payment{Paid: true, PaidDate: day("2026-02-03")}
	out, err := Generate(req, fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Fa.P_14_1W == "" {
		t.Error("no VAT in PLN (P_14_1W) although the request gives an exchange rate")
	}
	if !strings.Contains(string(out), "art. 113 ust. 1 ustawy o VAT") {
		t.Error("the request's exemption basis is not in the invoice")
	}
	if inv.Fa.Platnosc == nil || inv.Fa.Platnosc.DataZaplaty != "2026-02-03" {
		t.Errorf("payment date = %+v, want 2026-02-03", inv.Fa.Platnosc)
	}
	// An option still overrides the request.
	out, err = Generate(req, fixedClock, WithExemptionBasis("art. 43 ust. 1 pkt 37"))
	if err != nil || !strings.Contains(string(out), "art. 43 ust. 1 pkt 37") {
		t.Errorf("WithExemptionBasis does not override: %v", err)
	}
}
