package fa3

import (
	"context"
	"fmt"
	"testing"
)

// bigRequest returns a request with n lines over several rates.
func bigRequest(n int) InvoiceRequest {
	req := baseRequest()
	rates := []string{"23", "8", "5", "zw", "0 KR"}
	req.Lines = nil
	for i := range n {
		req.Lines = append(req.Lines, Line{
			Name: fmt.Sprintf("Pozycja numer %d, towar o dłuższej nazwie", i+1), Unit: "szt.",
			Quantity: fmt.Sprintf("%d.%03d", i%17+1, i%1000), UnitNetPrice: fmt.Sprintf("%d.%02d", 10+i, i%100),
			VATRate: rates[i%len(rates)], GTU: "GTU_06",
		})
	}
	req.Payment = &Payment{Method: 6, DueDate: day("2026-03-15"), BankAccount: "PL61109010140000071219812874"}
	return req
}

// bigInvoice generates the invoice with the fewest lines (a multiple of 10)
// that has at least size bytes, found by doubling and bisection.
func bigInvoice(tb testing.TB, size int) []byte {
	tb.Helper()
	gen := func(tens int) []byte {
		out, err := Generate(bigRequest(10*tens), fixedClock)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	hi := 1
	for len(gen(hi)) < size {
		hi *= 2
	}
	lo := hi / 2 // gen(lo) is too small, or lo is 0
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; len(gen(mid)) >= size {
			hi = mid
		} else {
			lo = mid
		}
	}
	return gen(hi)
}

// The Big variants measure an invoice of 0.9 MB, close to the 1 MB KSeF
// limit, where the garbage per validation matters for the sender's memory
// bound.
func BenchmarkValidate(b *testing.B)    { benchValidate(b, newXSDValidator(b), 30<<10) }
func BenchmarkValidateBig(b *testing.B) { benchValidate(b, newXSDValidator(b), 900<<10) }

func BenchmarkValidateFallback(b *testing.B) {
	v, _ := NewValidator("")
	benchValidate(b, v, 30<<10)
}

func benchValidate(b *testing.B, v *Validator, size int) {
	data := bigInvoice(b, size)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B)    { benchParse(b, 30<<10) }
func BenchmarkParseBig(b *testing.B) { benchParse(b, 900<<10) }

func benchParse(b *testing.B, size int) {
	data := bigInvoice(b, size)
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

func BenchmarkCheckSemantics(b *testing.B)    { benchCheckSemantics(b, 30<<10) }
func BenchmarkCheckSemanticsBig(b *testing.B) { benchCheckSemantics(b, 900<<10) }

func benchCheckSemantics(b *testing.B, size int) {
	inv, err := Parse(bigInvoice(b, size))
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

// BenchmarkDocumentRules is the cost of KSeF's XML rules (BOM, processing instructions,
// discouraged characters) that Validate adds, on a 900 KiB invoice.
func BenchmarkDocumentRules(b *testing.B) {
	data := bigInvoice(b, 900<<10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if ve := checkDocumentRules(data); ve != nil {
			b.Fatal(ve)
		}
	}
}
