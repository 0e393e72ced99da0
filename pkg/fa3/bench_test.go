package fa3

import (
	"context"
	"fmt"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// bigRequest returns a request with n lines over several rates.
func bigRequest(n int) ksefapi.KsefInvoiceGenerateRequest {
	req := baseRequest()
	rates := []ksefapi.InvoiceLineVatRate{ksefapi.N23, ksefapi.N8, ksefapi.N5, ksefapi.Zw, ksefapi.N0KR}
	req.Lines = nil
	for i := range n {
		req.Lines = append(req.Lines, ksefapi.InvoiceLine{
			Name: fmt.Sprintf("Pozycja numer %d, towar o dłuższej nazwie", i+1), Unit: ptr("szt."),
			Quantity: fmt.Sprintf("%d.%03d", i%17+1, i%1000), UnitNetPrice: fmt.Sprintf("%d.%02d", 10+i, i%100),
			VatRate: rates[i%len(rates)], Gtu: ptr("GTU_06"),
		})
	}
	req.Payment = &ksefapi.Payment{Method: ptr(6), DueDate: ptr(day("2026-03-15")), BankAccount: ptr("PL61109010140000071219812874")}
	return req
}

// bigInvoice generates an invoice of at least size bytes.
func bigInvoice(tb testing.TB, size int) []byte {
	tb.Helper()
	for n := 10; ; n += 10 {
		out, err := Generate(bigRequest(n), fixedClock)
		if err != nil {
			tb.Fatal(err)
		}
		if len(out) >= size {
			return out
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	v := newXSDValidator(b)
	data := bigInvoice(b, 30<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateFallback(b *testing.B) {
	v, _ := NewValidator("")
	data := bigInvoice(b, 30<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	data := bigInvoice(b, 30<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	req := bigRequest(60)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(req, fixedClock); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSemantics(b *testing.B) {
	inv, err := Parse(bigInvoice(b, 30<<10))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckSemantics(inv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	data := bigInvoice(b, 30<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(data); err != nil {
			b.Fatal(err)
		}
	}
}

// The 0.9 MB variants measure an invoice close to the 1 MB KSeF limit, where
// the garbage per validation matters for the sender's memory bound.

func BenchmarkValidateBig(b *testing.B) {
	v := newXSDValidator(b)
	data := bigInvoice(b, 900<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBig(b *testing.B) {
	data := bigInvoice(b, 900<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSemanticsBig(b *testing.B) {
	inv, err := Parse(bigInvoice(b, 900<<10))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckSemantics(inv); err != nil {
			b.Fatal(err)
		}
	}
}
