package fa3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidRequest is wrapped by Generate's errors about its input.
var ErrInvalidRequest = errors.New("fa3: invalid invoice request")

// DefaultSystemInfo is written to Naglowek/SystemInfo when the request names none.
const DefaultSystemInfo = "ksef-pipeline"

// DefaultExemptionBasis is the legal basis (P_19A) written for exempt ("zw")
// lines unless WithExemptionBasis says otherwise: the general exemptions of
// the VAT Act. The request carries no field for it.
const DefaultExemptionBasis = "art. 43 ust. 1 ustawy o podatku od towarów i usług"

type genConfig struct {
	now             func() time.Time
	exchangeRate    *big.Rat
	exchangeRateStr string
	exemptionBasis  string
	validator       *Validator
}

// GenerateOption configures Generate.
type GenerateOption func(*genConfig)

// WithClock sets the clock for DataWytworzeniaFa (default time.Now), so
// that tests get deterministic output. The schema accepts only times from
// 2025-09-01 on.
func WithClock(now func() time.Time) GenerateOption { return func(c *genConfig) { c.now = now } }

// WithExchangeRate sets the PLN exchange rate of a foreign-currency invoice
// (an xsd:decimal such as "4.2618"); the VAT totals converted to PLN
// (P_14_xW) are then written. Ignored for invoices in PLN.
func WithExchangeRate(rate string) GenerateOption {
	return func(c *genConfig) { c.exchangeRateStr = rate }
}

// WithExemptionBasis sets the legal basis of exemption (P_19A) written when
// any line is exempt ("zw"); default DefaultExemptionBasis.
func WithExemptionBasis(basis string) GenerateOption {
	return func(c *genConfig) { c.exemptionBasis = basis }
}

// WithValidator makes Generate validate its output with v (and check its
// semantics) before returning it.
func WithValidator(v *Validator) GenerateOption { return func(c *genConfig) { c.validator = v } }

// rateGroup says where a VAT rate's totals go.
type rateGroup struct {
	order    int    // position among the totals
	net, vat string // field names, vat "" when the rate carries no VAT amount
	percent  int64  // VAT percentage, for rates with VAT
}

// rateGroups maps each P_12 value to its total fields, following the
// schema's documentation: P_13_1 basic rate (23/22), P_13_2 first reduced
// (8/7), P_13_3 second reduced (5), P_13_4 taxi flat rate (4/3), P_13_6_1
// 0% domestic, P_13_6_2 0% intra-Community supply, P_13_6_3 0% export,
// P_13_7 exempt, P_13_8 outside Poland, P_13_9 services under art. 100(1)(4),
// P_13_10 domestic reverse charge.
var rateGroups = map[string]rateGroup{
	"23":    {1, "P_13_1", "P_14_1", 23},
	"22":    {1, "P_13_1", "P_14_1", 22},
	"8":     {2, "P_13_2", "P_14_2", 8},
	"7":     {2, "P_13_2", "P_14_2", 7},
	"5":     {3, "P_13_3", "P_14_3", 5},
	"4":     {4, "P_13_4", "P_14_4", 4},
	"3":     {4, "P_13_4", "P_14_4", 3},
	"0 KR":  {6, "P_13_6_1", "", 0},
	"0 WDT": {7, "P_13_6_2", "", 0},
	"0 EX":  {8, "P_13_6_3", "", 0},
	"zw":    {9, "P_13_7", "", 0},
	"np I":  {10, "P_13_8", "", 0},
	"np II": {11, "P_13_9", "", 0},
	"oo":    {12, "P_13_10", "", 0},
}

var (
	quantityRe = regexp.MustCompile(`^-?([1-9]\d{0,15}|0)(\.\d{1,6})?$`) // TIlosci
	priceRe    = regexp.MustCompile(`^-?([1-9]\d{0,13}|0)(\.\d{1,8})?$`) // TKwotowy2
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
	nrVatUERe  = regexp.MustCompile(`^(\d|[A-Z]|\+|\*){1,12}$`)
	gtuRe      = regexp.MustCompile(`^GTU_(0[1-9]|1[0-3])$`)
	euCodes    = map[string]bool{}
)

func init() {
	for _, c := range strings.Fields("AT BE BG CY CZ DK EE FI FR DE EL HR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE XI") {
		euCodes[c] = true
	}
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// Generate builds an FA(3) document (UTF-8 with an XML declaration) from
// structured data. Line values are quantity × unit net price rounded to the
// grosz; per-rate totals sum the line values and compute VAT once on each
// sum; P_15 is the sum of all of them. All arithmetic is exact (math/big),
// rounding half away from zero. Advance invoices (ZAL, KOR_ZAL) carry the
// lines as the order (Zamowienie) and document an advance of its full
// value. Correcting invoices require req.Correction. Errors about the
// input wrap ErrInvalidRequest.
func Generate(req InvoiceRequest, opts ...GenerateOption) ([]byte, error) {
	cfg := genConfig{now: time.Now, exemptionBasis: DefaultExemptionBasis}
	// The request's own values come first; options override them.
	if req.ExchangeRate != "" {
		cfg.exchangeRateStr = req.ExchangeRate
	}
	if strings.TrimSpace(req.ExemptionBasis) != "" {
		cfg.exemptionBasis = req.ExemptionBasis
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.exchangeRateStr != "" {
		r, err := parseDecimal(cfg.exchangeRateStr)
		if err != nil || r.Sign() <= 0 {
			return nil, badRequest("exchange rate %q is not a positive decimal", cfg.exchangeRateStr)
		}
		cfg.exchangeRate = r
	}
	inv, err := buildInvoice(&req, &cfg)
	if err != nil {
		return nil, err
	}
	body, err := xml.MarshalIndent(inv, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("fa3: marshalling invoice: %w", err)
	}
	out := make([]byte, 0, len(xml.Header)+len(body)+1)
	out = append(out, xml.Header...)
	out = append(out, body...)
	out = append(out, '\n')
	if cfg.validator != nil {
		res, err := cfg.validator.Validate(context.Background(), out)
		if err != nil {
			return nil, fmt.Errorf("fa3: generated invoice is invalid: %w", err)
		}
		if err := CheckSemantics(res.Invoice); err != nil {
			return nil, fmt.Errorf("fa3: generated invoice is inconsistent: %w", err)
		}
	}
	return out, nil
}

func yesNo(b bool) string {
	if b {
		return "1"
	}
	return "2"
}

func str(s string) string { return strings.TrimSpace(s) }

func date(d time.Time) string { return d.Format(dateLayout) }

func buildInvoice(req *InvoiceRequest, cfg *genConfig) (*Invoice, error) {
	typ := TypeVAT
	if req.Type != "" {
		typ = req.Type
		if !invTypeRe.MatchString(typ) {
			return nil, badRequest("unknown invoice type %q", typ)
		}
	}
	if strings.TrimSpace(req.Number) == "" {
		return nil, badRequest("invoiceNumber is required")
	}
	if req.IssueDate.IsZero() {
		return nil, badRequest("issueDate is required")
	}
	currency := strings.ToUpper(strings.TrimSpace(req.Currency))
	if currency == "" {
		currency = "PLN"
	}
	if !currencyRe.MatchString(currency) {
		return nil, badRequest("currency %q is not an ISO 4217 code", req.Currency)
	}
	if len(req.Lines) == 0 {
		return nil, badRequest("at least one line is required")
	}

	seller, err := sellerParty(&req.Seller)
	if err != nil {
		return nil, err
	}
	buyer, err := buyerParty(&req.Buyer)
	if err != nil {
		return nil, err
	}
	systemInfo := str(req.SystemInfo)
	if systemInfo == "" {
		systemInfo = DefaultSystemInfo
	}
	inv := &Invoice{
		Naglowek: Naglowek{
			KodFormularza:     KodFormularza{KodSystemowy: KodSystemowy, WersjaSchemy: WersjaSchemy, Value: KodFormularzaFA},
			WariantFormularza: WariantFormularza,
			DataWytworzeniaFa: cfg.now().UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z"),
			SystemInfo:        systemInfo,
		},
		Podmiot1: *seller,
		Podmiot2: *buyer,
	}
	f := &inv.Fa
	f.KodWaluty = currency
	f.P_1 = date(req.IssueDate)
	f.P_1M = str(req.PlaceOfIssue)
	f.P_2 = strings.TrimSpace(req.Number)
	if !req.SaleDate.IsZero() {
		f.P_6 = date(req.SaleDate)
	}
	f.RodzajFaktury = typ

	// Lines and totals per rate group.
	type total struct {
		g        rateGroup
		net      *big.Rat
		percents map[int64]bool
	}
	totals := map[int]*total{}
	advance := typ == TypeZAL || typ == TypeKORZAL
	var zamowienie Zamowienie
	hasZw, hasOO := false, false
	for i, l := range req.Lines {
		n := i + 1
		name := strings.Join(strings.Fields(l.Name), " ")
		if name == "" {
			return nil, badRequest("line %d: name is required", n)
		}
		qtyStr, priceStr := strings.TrimSpace(l.Quantity), strings.TrimSpace(l.UnitNetPrice)
		if !quantityRe.MatchString(qtyStr) {
			return nil, badRequest("line %d: quantity %q must be a decimal with at most 6 fraction digits", n, l.Quantity)
		}
		if !priceRe.MatchString(priceStr) {
			return nil, badRequest("line %d: unitNetPrice %q must be a decimal with at most 8 fraction digits", n, l.UnitNetPrice)
		}
		g, ok := rateGroups[l.VATRate]
		if !ok {
			return nil, badRequest("line %d: unknown VAT rate %q", n, l.VATRate)
		}
		gtu := str(l.GTU)
		if gtu != "" && !gtuRe.MatchString(gtu) {
			return nil, badRequest("line %d: GTU %q is not GTU_01..GTU_13", n, gtu)
		}
		qty, _ := parseDecimal(qtyStr)
		price, _ := parseDecimal(priceStr)
		value := roundTo(new(big.Rat).Mul(qty, price), 2)

		t := totals[g.order]
		if t == nil {
			t = &total{g: g, net: new(big.Rat), percents: map[int64]bool{}}
			totals[g.order] = t
		}
		t.net.Add(t.net, value)
		if g.vat != "" {
			t.percents[g.percent] = true
			if len(t.percents) > 1 {
				return nil, badRequest("line %d: rates %s cannot be mixed with the other rate of their group on one invoice", n, l.VATRate)
			}
		}
		hasZw = hasZw || l.VATRate == "zw"
		hasOO = hasOO || l.VATRate == "oo"

		if advance {
			zw := ZamowienieWiersz{
				NrWierszaZam: strconv.Itoa(n),
				P_7Z:         name,
				P_8AZ:        str(l.Unit),
				P_8BZ:        qtyStr,
				P_9AZ:        priceStr,
				P_11NettoZ:   formatDecimal(value, 2, 2),
				P_12Z:        l.VATRate,
				GTUZ:         gtu,
			}
			if g.vat != "" {
				zw.P_11VatZ = formatDecimal(roundTo(new(big.Rat).Mul(value, big.NewRat(g.percent, 100)), 2), 2, 2)
			}
			zamowienie.ZamowienieWiersz = append(zamowienie.ZamowienieWiersz, zw)
			continue
		}
		f.FaWiersz = append(f.FaWiersz, FaWiersz{
			NrWierszaFa: strconv.Itoa(n),
			P_7:         name,
			P_8A:        str(l.Unit),
			P_8B:        qtyStr,
			P_9A:        priceStr,
			P_11:        formatDecimal(value, 2, 2),
			P_12:        l.VATRate,
			GTU:         gtu,
		})
	}

	gross := new(big.Rat)
	foreign := currency != "PLN" && cfg.exchangeRate != nil
	for order := 1; order <= 12; order++ {
		t := totals[order]
		if t == nil {
			continue
		}
		gross.Add(gross, t.net)
		setField(f, t.g.net, formatDecimal(t.net, 2, 2))
		if t.g.vat == "" {
			continue
		}
		var pct int64
		for p := range t.percents {
			pct = p
		}
		vat := roundTo(new(big.Rat).Mul(t.net, big.NewRat(pct, 100)), 2)
		gross.Add(gross, vat)
		setField(f, t.g.vat, formatDecimal(vat, 2, 2))
		if foreign {
			setField(f, t.g.vat+"W", formatDecimal(new(big.Rat).Mul(vat, cfg.exchangeRate), 2, 2))
		}
	}
	f.P_15 = formatDecimal(gross, 2, 2)
	if advance {
		zamowienie.WartoscZamowienia = f.P_15
		f.Zamowienie = &zamowienie
	}

	f.Adnotacje = Adnotacje{
		P_16:                 yesNo(req.CashAccounting),
		P_17:                 "2",
		P_18:                 yesNo(req.ReverseCharge),
		P_18A:                yesNo(req.SplitPayment),
		Zwolnienie:           Zwolnienie{P_19N: "1"},
		NoweSrodkiTransportu: NoweSrodkiTransportu{P_22N: "1"},
		P_23:                 "2",
		PMarzy:               PMarzy{P_PMarzyN: "1"},
	}
	if hasOO {
		f.Adnotacje.P_18 = "1" // domestic reverse charge: the buyer accounts for the VAT
	}
	if hasZw {
		basis := strings.Join(strings.Fields(cfg.exemptionBasis), " ")
		if basis == "" {
			return nil, badRequest("exempt lines need a legal basis")
		}
		f.Adnotacje.Zwolnienie = Zwolnienie{P_19: "1", P_19A: basis}
	}

	if err := correction(req, f); err != nil {
		return nil, err
	}
	p, err := payment(req)
	if err != nil {
		return nil, err
	}
	f.Platnosc = p
	return inv, nil
}

// setField sets one of Fa's total fields by its schema name.
func setField(f *Fa, name, v string) {
	ptr := map[string]*string{
		"P_13_1": &f.P_13_1, "P_14_1": &f.P_14_1, "P_14_1W": &f.P_14_1W,
		"P_13_2": &f.P_13_2, "P_14_2": &f.P_14_2, "P_14_2W": &f.P_14_2W,
		"P_13_3": &f.P_13_3, "P_14_3": &f.P_14_3, "P_14_3W": &f.P_14_3W,
		"P_13_4": &f.P_13_4, "P_14_4": &f.P_14_4, "P_14_4W": &f.P_14_4W,
		"P_13_6_1": &f.P_13_6_1, "P_13_6_2": &f.P_13_6_2, "P_13_6_3": &f.P_13_6_3,
		"P_13_7": &f.P_13_7, "P_13_8": &f.P_13_8, "P_13_9": &f.P_13_9, "P_13_10": &f.P_13_10,
	}[name]
	*ptr = v
}

func correction(req *InvoiceRequest, f *Fa) error {
	isKor := f.RodzajFaktury == TypeKOR || f.RodzajFaktury == TypeKORZAL || f.RodzajFaktury == TypeKORROZ
	c := req.Correction
	switch {
	case isKor && c == nil:
		return badRequest("a %s invoice requires correction data", f.RodzajFaktury)
	case !isKor && c != nil:
		return badRequest("correction data given for a %s invoice", f.RodzajFaktury)
	case c == nil:
		return nil
	}
	if strings.TrimSpace(c.Number) == "" || c.IssueDate.IsZero() {
		return badRequest("correction: number and issueDate of the corrected invoice are required")
	}
	d := DaneFaKorygowanej{
		DataWystFaKorygowanej: date(c.IssueDate),
		NrFaKorygowanej:       strings.TrimSpace(c.Number),
		NrKSeFN:               "1",
	}
	if k := str(c.KSeFNumber); k != "" {
		if !ksefNumberRe.MatchString(k) {
			return badRequest("correction: %q is not a KSeF number", k)
		}
		d.NrKSeFN, d.NrKSeF, d.NrKSeFFaKorygowanej = "", "1", k
	}
	f.PrzyczynaKorekty = strings.Join(strings.Fields(str(c.Reason)), " ")
	f.DaneFaKorygowanej = []DaneFaKorygowanej{d}
	return nil
}

func payment(req *InvoiceRequest) (*Platnosc, error) {
	pm := req.Payment
	if pm == nil {
		return nil, nil
	}
	p := &Platnosc{}
	if pm.Paid {
		p.Zaplacono, p.DataZaplaty = "1", date(req.IssueDate)
		if !pm.PaidDate.IsZero() {
			p.DataZaplaty = date(pm.PaidDate)
		}
	}
	if !pm.DueDate.IsZero() {
		p.TerminPlatnosci = []TerminPlatnosci{{Termin: date(pm.DueDate)}}
	}
	if pm.Method != 0 {
		if pm.Method < 1 || pm.Method > 7 {
			return nil, badRequest("payment method %d is not 1..7", pm.Method)
		}
		p.FormaPlatnosci = strconv.Itoa(pm.Method)
	}
	if acct := strings.Join(strings.Fields(str(pm.BankAccount)), ""); acct != "" {
		if len(acct) < 10 || len(acct) > 34 {
			return nil, badRequest("bank account %q must have 10 to 34 characters", acct)
		}
		p.RachunekBankowy = []RachunekBankowy{{NrRB: acct}}
	}
	if p.Zaplacono == "" && p.TerminPlatnosci == nil && p.FormaPlatnosci == "" && p.RachunekBankowy == nil {
		return nil, nil
	}
	return p, nil
}

func address(who string, a *Address) (*Adres, error) {
	cc := strings.ToUpper(strings.TrimSpace(a.CountryCode))
	if !countryRe.MatchString(cc) {
		return nil, badRequest("%s: country code %q is not ISO 3166 alpha-2", who, a.CountryCode)
	}
	l1 := strings.Join(strings.Fields(a.Line1), " ")
	if l1 == "" {
		return nil, badRequest("%s: address line1 is required", who)
	}
	return &Adres{KodKraju: cc, AdresL1: l1, AdresL2: strings.Join(strings.Fields(str(a.Line2)), " ")}, nil
}

func contacts(p *Party) []DaneKontaktowe {
	c := DaneKontaktowe{Email: str(p.Email), Telefon: str(p.Phone)}
	if c == (DaneKontaktowe{}) {
		return nil
	}
	return []DaneKontaktowe{c}
}

func sellerParty(p *Party) (*Podmiot1, error) {
	nip := str(p.NIP)
	if !nipRe.MatchString(nip) {
		return nil, badRequest("seller: NIP %q is not a valid NIP", nip)
	}
	name := strings.Join(strings.Fields(p.Name), " ")
	if name == "" {
		return nil, badRequest("seller: name is required")
	}
	addr, err := address("seller", &p.Address)
	if err != nil {
		return nil, err
	}
	return &Podmiot1{
		DaneIdentyfikacyjne: DaneIdentyfikacyjne{NIP: nip, Nazwa: name},
		Adres:               *addr,
		DaneKontaktowe:      contacts(p),
	}, nil
}

func buyerParty(p *Party) (*Podmiot2, error) {
	name := strings.Join(strings.Fields(p.Name), " ")
	if name == "" {
		return nil, badRequest("buyer: name is required")
	}
	addr, err := address("buyer", &p.Address)
	if err != nil {
		return nil, err
	}
	id := DaneIdentyfikacyjne{Nazwa: name}
	switch nip, eu, foreign := str(p.NIP), strings.ToUpper(strings.ReplaceAll(str(p.EUVatID), " ", "")), str(p.ForeignID); {
	case nip != "":
		if !nipRe.MatchString(nip) {
			return nil, badRequest("buyer: NIP %q is not a valid NIP", nip)
		}
		id.NIP = nip
	case eu != "":
		if len(eu) < 3 || !euCodes[eu[:2]] || !nrVatUERe.MatchString(eu[2:]) {
			return nil, badRequest("buyer: %q is not an EU VAT number with its country prefix", eu)
		}
		id.KodUE, id.NrVatUE = eu[:2], eu[2:]
	case foreign != "":
		if len(foreign) > 50 {
			return nil, badRequest("buyer: foreign tax id longer than 50 characters")
		}
		id.KodKraju, id.NrID = addr.KodKraju, foreign
	default:
		id.BrakID = "1"
	}
	return &Podmiot2{
		DaneIdentyfikacyjne: id,
		Adres:               addr,
		DaneKontaktowe:      contacts(p),
		JST:                 "2",
		GV:                  "2",
	}, nil
}
