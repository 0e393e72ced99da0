package bench

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// Invoice is one generated FA(3) invoice.
type Invoice struct {
	ID     string // the ERP's id, also P_2
	Seller string // context NIP
	XML    []byte
}

// Generator makes realistic FA(3) invoices from a seed: the same seed gives the same invoices.
// The number of lines varies so that documents span MinSize..MaxSize bytes.
type Generator struct {
	seed  uint64
	buyer string
	issue time.Time
	// MinLines and MaxLines bound the lines per invoice (1 line is about 2 KB in all, each more
	// about 0.24 KB, so 1..200 lines span 2..50 KB).
	MinLines, MaxLines int
	// NameLen > 0 gives lines random names of that length, which compress poorly (batch parts
	// of a given size need them).
	NameLen int
}

// NewGenerator returns a generator of invoices to buyer issued on issue's day.
func NewGenerator(seed int64, buyer string, issue time.Time) *Generator {
	return &Generator{seed: uint64(seed), buyer: buyer, issue: issue, MinLines: 1, MaxLines: 200}
}

var (
	lineNames = []string{"Wdrożenie integracji KSeF", "Szkolenie zespołu księgowego", "Licencja oprogramowania ERP (12 mies.)",
		"Usługa hostingu aplikacji", "Książka „Faktury ustrukturyzowane”", "Konsultacje podatkowe", "Serwis urządzeń drukujących",
		"Materiały biurowe — papier A4 80 g/m²", "Transport towarów na trasie Łódź–Gdańsk", "Abonament telekomunikacyjny"}
	units = []string{"h", "szt.", "usł.", "kg", "mies."}
	rates = []ksefapi.InvoiceLineVatRate{ksefapi.N23, ksefapi.N23, ksefapi.N8, ksefapi.N5}
)

// Invoice makes invoice number n of seller; it depends only on the seed, seller and n, so
// invoices can be made in parallel.
func (g *Generator) Invoice(seller string, n int) (Invoice, error) {
	h := fnv.New64a()
	h.Write([]byte(seller))
	rng := rand.New(rand.NewPCG(g.seed, h.Sum64()^uint64(n)))
	lines := g.MinLines
	if g.MaxLines > g.MinLines {
		lines += rng.IntN(g.MaxLines - g.MinLines + 1)
	}
	req := g.request(rng, seller, n, lines)
	xml, err := fa3.Generate(fa3wire.Request(req), fa3.WithClock(func() time.Time { return g.issue }))
	if err != nil {
		return Invoice{}, fmt.Errorf("bench: generating invoice %d of %s: %w", n, seller, err)
	}
	return Invoice{ID: req.InvoiceNumber, Seller: seller, XML: xml}, nil
}

func (g *Generator) request(rng *rand.Rand, seller string, n, lines int) ksefapi.KsefInvoiceGenerateRequest {
	ptr := func(s string) *string { return &s }
	day := openapi_types.Date{Time: time.Date(g.issue.Year(), g.issue.Month(), g.issue.Day(), 0, 0, 0, 0, time.UTC)}
	ls := make([]ksefapi.InvoiceLine, lines)
	for i := range ls {
		name := lineNames[rng.IntN(len(lineNames))]
		if g.NameLen > 0 {
			name = randomText(rng, g.NameLen)
		}
		ls[i] = ksefapi.InvoiceLine{
			Name:         name,
			Unit:         ptr(units[rng.IntN(len(units))]),
			Quantity:     fmt.Sprintf("%d", 1+rng.IntN(40)),
			UnitNetPrice: fmt.Sprintf("%d.%02d", 5+rng.IntN(2000), rng.IntN(100)),
			VatRate:      rates[rng.IntN(len(rates))],
		}
	}
	method := 6
	return ksefapi.KsefInvoiceGenerateRequest{
		InvoiceNumber: fmt.Sprintf("FV/%s/B/%07d", seller[:4], n),
		IssueDate:     day,
		SaleDate:      &day,
		PlaceOfIssue:  ptr("Warszawa"),
		Currency:      "PLN",
		Seller: ksefapi.Party{Nip: ptr(seller), Name: "Sprzedawca " + seller + " Sp. z o.o.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Żelazna 12", Line2: ptr("00-851 Warszawa")}},
		Buyer: ksefapi.Party{Nip: ptr(g.buyer), Name: "Nabywca Łódzki S.A.",
			Address: ksefapi.Address{CountryCode: "PL", Line1: "ul. Piotrkowska 100", Line2: ptr("90-001 Łódź")}},
		Lines:   ls,
		Payment: &ksefapi.Payment{DueDate: &openapi_types.Date{Time: day.Time.AddDate(0, 0, 14)}, Method: &method, BankAccount: ptr("61109010140000071219812874")},
	}
}

// NIP returns the i-th of a series of valid NIPs (the XSD's pattern, the right check digit), for
// many contexts.
func NIP(i int) string {
	weights := [9]int{6, 5, 7, 2, 3, 4, 5, 6, 7}
	for base := 712000000 + i*7; ; base++ {
		d := fmt.Sprintf("%09d", base%1000000000)
		if d[0] == '0' || d[1:3] == "00" { // the XSD's TNrNIP pattern
			continue
		}
		sum := 0
		for k := range 9 {
			sum += int(d[k]-'0') * weights[k]
		}
		if c := sum % 11; c != 10 {
			return d + string(rune('0'+c))
		}
	}
}

// Many makes count invoices, the i-th from seller(i) numbered i, on every core.
func (g *Generator) Many(count int, seller func(i int) string) ([]Invoice, error) {
	out := make([]Invoice, count)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += len(errs) {
				if out[i], errs[w] = g.Invoice(seller(i), i); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -"

func randomText(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}
