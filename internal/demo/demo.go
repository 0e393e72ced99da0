// Package demo drives a running pipeline the way an ERP and an accountant would: it submits
// invoices made by the project's own FA(3) generator (half as structured data for the sender to
// generate, half as XML uploaded to storage), follows every event to its outcome, downloads the
// buyer's invoices back with a query, and reports where every artifact is.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// The demo's contexts: two sellers and their common buyer.
var (
	Sellers = []string{"5261040828", "7740001454"}
	Buyer   = "5213017228"
)

// Tokens returns a token for each demo context.
func Tokens() map[string]string {
	t := map[string]string{Buyer: "demo-token-buyer"}
	for i, nip := range Sellers {
		t[nip] = fmt.Sprintf("demo-token-seller-%d", i+1)
	}
	return t
}

// Options of a demo run.
type Options struct {
	Invoices int           // how many invoices to submit
	Timeout  time.Duration // for the whole run
	Out      io.Writer     // progress and the report
	Now      func() time.Time
}

// Result is what the demo saw.
type Result struct {
	Accepted, Rejected, Visualized, Downloaded int
	UPOs                                       []events.ObjectRef
	Invoices                                   map[string]*Invoice // by ERP invoice id
	Query                                      *events.QueryCompleted
}

// Invoice is one submitted invoice's path through the pipeline.
type Invoice struct {
	ID, Seller, KsefNumber, Rejection string
	XML, PDF                          *events.ObjectRef
}

// Request builds the structured data of the demo's n-th invoice from a seller to the buyer.
func Request(seller string, n int, issue time.Time) ksefapi.KsefInvoiceGenerateRequest {
	ptr := func(s string) *string { return &s }
	day := openapi_types.Date{Time: time.Date(issue.Year(), issue.Month(), issue.Day(), 0, 0, 0, 0, time.UTC)}
	lines := []ksefapi.InvoiceLine{
		{Name: "Wdrożenie integracji KSeF", Unit: ptr("h"), Quantity: fmt.Sprintf("%d", 4+n%7), UnitNetPrice: "180.00", VatRate: ksefapi.N23},
		{Name: "Szkolenie zespołu księgowego", Unit: ptr("szt."), Quantity: "1", UnitNetPrice: fmt.Sprintf("%d.50", 900+n), VatRate: ksefapi.N8},
	}
	if n%3 == 0 {
		lines = append(lines, ksefapi.InvoiceLine{Name: "Książka „Faktury ustrukturyzowane”", Unit: ptr("szt."), Quantity: "2", UnitNetPrice: "59.90", VatRate: ksefapi.N5})
	}
	return ksefapi.KsefInvoiceGenerateRequest{
		InvoiceNumber: fmt.Sprintf("FV/%s/%04d", seller[:4], n),
		IssueDate:     day,
		SaleDate:      &day,
		PlaceOfIssue:  ptr("Warszawa"),
		Currency:      "PLN",
		Seller: ksefapi.Party{Nip: ptr(seller), Name: "Sprzedawca " + seller + " Sp. z o.o.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Żelazna 12", Line2: ptr("00-851 Warszawa")}},
		Buyer: ksefapi.Party{Nip: ptr(Buyer), Name: "Nabywca Łódzki S.A.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Piotrkowska 100", Line2: ptr("90-001 Łódź")}},
		Lines:   lines,
		Payment: &ksefapi.Payment{DueDate: &openapi_types.Date{Time: day.Time.AddDate(0, 0, 14)}, Method: ptrInt(6), BankAccount: ptr("61109010140000071219812874")},
	}
}

func ptrInt(i int) *int { return &i }

// Run submits the invoices to a started embedded pipeline, follows them, queries the buyer's
// invoices and writes a report. The pipeline's workers must be running.
func Run(ctx context.Context, e *embedded.Pipeline, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rt := e.Runtime
	start := o.Now().Add(-time.Minute)
	res := &Result{Invoices: map[string]*Invoice{}}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, format+"\n", args...) }

	// Follow every event from the start, live, in the background.
	seen := make(chan natsx.Delivered, 1024)
	followErr := make(chan error, 1)
	go func() {
		followErr <- natsx.Follow(ctx, rt.JS, rt.Settings.NATS, natsx.FollowOptions{Live: true}, func(d natsx.Delivered) error {
			select {
			case seen <- d:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()

	say("Submitting %d invoices from sellers %v to buyer %s ...", o.Invoices, Sellers, Buyer)
	for n := 1; n <= o.Invoices; n++ {
		seller := Sellers[(n/2)%len(Sellers)] // each seller gets both kinds of submission
		req := Request(seller, n, o.Now())
		ev := &events.InvoiceSubmitted{Visualize: true}
		ev.InvoiceID, ev.ContextNIP = req.InvoiceNumber, seller
		if n%2 == 0 {
			// Structured data: the sender generates the FA(3) XML.
			data, err := json.Marshal(req)
			if err != nil {
				return nil, err
			}
			ev.Generate = data
		} else {
			// XML made by the generator behind ksefInvoiceGenerate (generating locally spends none
			// of KSeF's request budget), uploaded to storage, referenced by the event.
			xml, err := fa3.Generate(fa3wire.Request(req), fa3.WithValidator(rt.Validator))
			if err != nil {
				return nil, fmt.Errorf("generating invoice %d: %w", n, err)
			}
			loc := rt.Layout.ERPOutbox(seller, req.InvoiceNumber+".xml")
			info, err := rt.Store.Put(ctx, loc.Bucket, loc.Key, bytes.NewReader(xml), int64(len(xml)),
				storage.ObjectMeta{ContentType: "application/xml"})
			if err != nil {
				return nil, err
			}
			ev.XML = &events.ObjectRef{Bucket: info.Bucket, Key: info.Key, SHA256: info.SHA256, Size: info.Size}
		}
		if err := rt.Publisher.Publish(ctx, ev, nil); err != nil {
			return nil, err
		}
		res.Invoices[ev.InvoiceID] = &Invoice{ID: ev.InvoiceID, Seller: seller}
	}

	var queryID string
	var upoInvoices int
	for {
		done := res.Accepted+res.Rejected == o.Invoices && res.Visualized >= res.Accepted && upoInvoices >= res.Accepted
		if done && queryID == "" {
			queryID = fmt.Sprintf("demo-query-%d", o.Now().Unix())
			q := &events.QueryRequested{QueryID: queryID, SubjectType: events.SubjectBuyer,
				From: events.At(start), To: events.At(o.Now().Add(time.Minute))}
			q.ContextNIP = Buyer
			say("All invoices settled; querying the buyer's invoices (%s as subject2) ...", Buyer)
			if err := rt.Publisher.Publish(ctx, q, nil); err != nil {
				return nil, err
			}
		}
		if res.Query != nil {
			break
		}
		var d natsx.Delivered
		select {
		case d = <-seen:
		case err := <-followErr:
			return res, fmt.Errorf("following events: %w", err)
		case <-ctx.Done():
			return res, fmt.Errorf("demo timed out: %d accepted, %d rejected, %d visualized, UPOs for %d invoices: %w",
				res.Accepted, res.Rejected, res.Visualized, upoInvoices, ctx.Err())
		}
		switch ev := d.Event.(type) {
		case *events.InvoiceAccepted:
			if inv := res.Invoices[ev.InvoiceID]; inv != nil && inv.KsefNumber == "" {
				inv.KsefNumber, inv.XML = ev.KsefNumber, ev.XML
				res.Accepted++
				say("  accepted  %-16s %s", ev.InvoiceID, ev.KsefNumber)
			}
		case *events.InvoiceRejected:
			if inv := res.Invoices[ev.InvoiceID]; inv != nil && inv.Rejection == "" {
				inv.Rejection = fmt.Sprintf("%d %s %v", ev.Code, ev.Description, ev.Details)
				res.Rejected++
				say("  REJECTED  %-16s %s", ev.InvoiceID, inv.Rejection)
			}
		case *events.InvoiceVisualized:
			if inv := res.Invoices[ev.InvoiceID]; inv != nil && inv.PDF == nil {
				inv.PDF = ev.Document
				res.Visualized++
			}
		case *events.SessionUpoStored:
			res.UPOs = append(res.UPOs, *ev.UPO)
			upoInvoices += len(ev.KsefNumbers)
			say("  UPO stored for session %s (%d invoices)", ev.SessionID, len(ev.KsefNumbers))
		case *events.InvoiceDownloaded:
			if ev.QueryID == queryID {
				res.Downloaded++
			}
		case *events.QueryCompleted:
			if ev.QueryID == queryID {
				res.Query = ev
			}
		case *events.DeadLettered:
			say("  DEAD LETTER %s: %s (%s)", ev.OriginalSubject, ev.Reason, ev.ErrorKind)
		}
	}
	report(o.Out, e, res)
	return res, nil
}

func report(w io.Writer, e *embedded.Pipeline, res *Result) {
	path := func(ref *events.ObjectRef) string {
		if ref == nil {
			return "-"
		}
		if e.ObjectsDir != "" {
			return filepath.Join(e.ObjectsDir, ref.Bucket, filepath.FromSlash(ref.Key))
		}
		return "s3://" + ref.Bucket + "/" + ref.Key
	}
	fmt.Fprintf(w, "\n%d accepted, %d rejected; %d PDFs; %d UPOs; the buyer's query downloaded %d invoices.\n\n",
		res.Accepted, res.Rejected, res.Visualized, len(res.UPOs), res.Downloaded)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INVOICE\tKSEF NUMBER\tXML\tPDF")
	ids := make([]string, 0, len(res.Invoices))
	for id := range res.Invoices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		inv := res.Invoices[id]
		num := inv.KsefNumber
		if inv.Rejection != "" {
			num = "rejected: " + inv.Rejection
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, num, path(inv.XML), path(inv.PDF))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nUPOs:")
	for i := range res.UPOs {
		fmt.Fprintf(w, "  %s\n", path(&res.UPOs[i]))
	}
	if res.Query != nil && e.ObjectsDir != "" {
		fmt.Fprintf(w, "\nDownloaded invoices of the buyer: %s\n", filepath.Join(e.ObjectsDir, e.Runtime.Layout.Buckets.Invoices, Buyer, "downloaded"))
	}
}
