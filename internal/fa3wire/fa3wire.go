// Package fa3wire converts the KSeF API's generate request (ksefapi.KsefInvoiceGenerateRequest,
// the wire type of ksefInvoiceGenerate and of the JSON an invoice.submitted event may carry) to
// fa3.InvoiceRequest, the domain type fa3.Generate takes. The emulator's HTTP handler, the sender
// and ksefctl convert at that boundary; pkg/fa3 knows nothing of the wire type.
package fa3wire

import (
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Request is r as fa3's domain request. Absent optional fields become empty values. A payment
// method of 0, outside the API's 1..7, is kept as 0 (no method), which fa3 takes as absent.
func Request(r ksefapi.KsefInvoiceGenerateRequest) fa3.InvoiceRequest {
	out := fa3.InvoiceRequest{
		Number:         r.InvoiceNumber,
		IssueDate:      r.IssueDate.Time,
		SaleDate:       date(r.SaleDate),
		PlaceOfIssue:   str(r.PlaceOfIssue),
		Currency:       r.Currency,
		ExchangeRate:   str(r.ExchangeRate),
		ExemptionBasis: str(r.ExemptionBasis),
		SystemInfo:     str(r.SystemInfo),
		Seller:         party(r.Seller),
		Buyer:          party(r.Buyer),
		CashAccounting: flag(r.CashAccounting),
		ReverseCharge:  flag(r.ReverseCharge),
		SplitPayment:   flag(r.SplitPayment),
	}
	if r.InvoiceType != nil {
		out.Type = string(*r.InvoiceType)
	}
	if len(r.Lines) > 0 {
		out.Lines = make([]fa3.Line, len(r.Lines))
		for i, l := range r.Lines {
			out.Lines[i] = fa3.Line{Name: l.Name, Unit: str(l.Unit), Quantity: l.Quantity,
				UnitNetPrice: l.UnitNetPrice, VATRate: string(l.VatRate), GTU: str(l.Gtu)}
		}
	}
	if c := r.Correction; c != nil {
		out.Correction = &fa3.Correction{Number: c.Number, IssueDate: c.IssueDate.Time,
			KSeFNumber: str(c.KsefNumber), Reason: str(c.Reason)}
	}
	if p := r.Payment; p != nil {
		out.Payment = &fa3.Payment{Paid: flag(p.Paid), PaidDate: date(p.PaidDate), DueDate: date(p.DueDate),
			BankAccount: str(p.BankAccount)}
		if p.Method != nil {
			out.Payment.Method = *p.Method
		}
	}
	return out
}

// Generate is fa3.Generate of Request(r).
func Generate(r ksefapi.KsefInvoiceGenerateRequest, opts ...fa3.GenerateOption) ([]byte, error) {
	return fa3.Generate(Request(r), opts...)
}

func party(p ksefapi.Party) fa3.Party {
	return fa3.Party{NIP: str(p.Nip), EUVatID: str(p.EuVatId), ForeignID: str(p.ForeignId), Name: p.Name,
		Email: str(p.Email), Phone: str(p.Phone),
		Address: fa3.Address{CountryCode: p.Address.CountryCode, Line1: p.Address.Line1, Line2: str(p.Address.Line2)}}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func flag(p *bool) bool { return p != nil && *p }

func date(d *openapi_types.Date) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}
