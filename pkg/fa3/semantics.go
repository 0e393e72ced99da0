package fa3

import (
	"fmt"
	"strconv"
	"time"
)

// dateTimeLayouts are the xsd:dateTime forms seen in practice (with and
// without fractional seconds and zone).
var dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

const dateLayout = "2006-01-02"

// amountFields returns the net (P_13_x) and VAT (P_14_x, without the
// PLN-converted W variants) totals that make up P_15.
func (f *Fa) amountFields() []struct{ name, value string } {
	return []struct{ name, value string }{
		{"P_13_1", f.P_13_1}, {"P_14_1", f.P_14_1},
		{"P_13_2", f.P_13_2}, {"P_14_2", f.P_14_2},
		{"P_13_3", f.P_13_3}, {"P_14_3", f.P_14_3},
		{"P_13_4", f.P_13_4}, {"P_14_4", f.P_14_4},
		{"P_13_5", f.P_13_5}, {"P_14_5", f.P_14_5},
		{"P_13_6_1", f.P_13_6_1}, {"P_13_6_2", f.P_13_6_2}, {"P_13_6_3", f.P_13_6_3},
		{"P_13_7", f.P_13_7}, {"P_13_8", f.P_13_8}, {"P_13_9", f.P_13_9},
		{"P_13_10", f.P_13_10}, {"P_13_11", f.P_13_11},
	}
}

// maxWarnings bounds the problems Warnings lists: an invoice with thousands of lines that do
// not add up must not make an event of megabytes.
const maxWarnings = 20

// semanticErr collects the semantic problems: the first as an error, and up to maxWarnings
// messages when all is set.
type semanticErr struct {
	err  *ValidationError
	all  bool
	msgs []string
	more int // problems past maxWarnings
}

func (s *semanticErr) add(format string, args ...any) {
	if s.err == nil {
		s.err = verr(KindSemantic, 0, format, args...)
		if !s.all {
			return
		}
		s.msgs = append(s.msgs, s.err.Message)
		return
	}
	if !s.all {
		return
	}
	if len(s.msgs) < maxWarnings {
		s.msgs = append(s.msgs, fmt.Sprintf(format, args...))
	} else {
		s.more++
	}
}

// fieldName names a field in messages, built only when a message needs it:
// prefix[i]/leaf, prefix[i] without a leaf, or prefix alone when i is 0.
type fieldName struct {
	prefix string
	i      int
	leaf   string
}

func named(name string) fieldName { return fieldName{prefix: name} }

func (f fieldName) String() string {
	if f.i == 0 {
		return f.prefix
	}
	s := f.prefix + "[" + strconv.Itoa(f.i) + "]"
	if f.leaf != "" {
		s += "/" + f.leaf
	}
	return s
}

// decimal parses the decimal v; ok is false when v is empty or malformed
// (which is recorded).
func (s *semanticErr) decimal(name fieldName, v string) (n num, ok bool) {
	if v == "" {
		return num{}, false
	}
	n, err := parseNum(v)
	if err != nil {
		s.add("%s: %v", name, err)
		return num{}, false
	}
	return n, true
}

func (s *semanticErr) date(name fieldName, v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(dateLayout, v)
	if err != nil {
		s.add("%s: %q is not a valid date", name, v)
		return time.Time{}, false
	}
	return t, true
}

// Warnings lists every problem CheckSemantics finds (at most 20, then a
// count of the rest), or nil. KSeF does not check any of them: the pipeline
// reports them as warnings and sends the invoice.
func Warnings(inv *Invoice) []string {
	if inv == nil {
		return nil
	}
	s := semanticErr{all: true}
	checkSemantics(&s, inv)
	if s.more > 0 {
		s.msgs = append(s.msgs, fmt.Sprintf("and %d more", s.more))
	}
	return s.msgs
}

// CheckSemantics checks what the schema cannot: that the totals add up,
// that dates are real dates in a sensible order and that lines agree with
// their quantities and prices. It returns the first problem as a
// *ValidationError of KindSemantic, or nil.
//
// These are not KSeF's rules (official/faktury/weryfikacja-faktury.md lists
// what KSeF verifies; see Validate, CheckIssueDate and CheckNIPs): KSeF
// accepts invoices that break them, so they are advice about the invoice
// (Warnings), never a reason to refuse it. The checks:
//
//   - P_15 equals the sum of the P_13_x and P_14_x present, within 0.01
//     (signs kept, so corrections with negative differences work; the
//     P_14_xW fields are PLN conversions and are not added). Invoices that
//     show no per-rate totals at all (simplified ones) are not checked.
//   - P_14_1, P_14_2 and P_14_3 equal P_13_x times one of the rates of
//     their group (23/22, 8/7, 5), within 0.01 per invoice line (VAT may be
//     computed per line and summed).
//   - P_14_xW appear only on invoices in a foreign currency.
//   - Every date parses; DataWytworzeniaFa is an xsd:dateTime; the period
//     P_6_Od..P_6_Do is not reversed; corrected invoices are not dated
//     after the correction.
//   - Correcting invoices (KOR, KOR_ZAL, KOR_ROZ) name the corrected
//     invoice (DaneFaKorygowanej).
//   - Invoice lines have unique numbers; a line's value (P_11, or P_11A
//     for gross pricing) does not exceed quantity × unit price, and equals
//     quantity × unit price − discount (P_10) when a discount is given,
//     within rounding (0.01). Published examples show line values below
//     quantity × price without an itemised discount, so that alone is not
//     an error.
//   - SumaObciazen and SumaOdliczen equal the sums of their items.
//   - The shares (Udzial) of additional buyers do not exceed 100%.
func CheckSemantics(inv *Invoice) error {
	if inv == nil {
		return verr(KindSemantic, 0, "no invoice")
	}
	var s semanticErr
	checkSemantics(&s, inv)
	if s.err != nil {
		return s.err
	}
	return nil
}

func checkSemantics(s *semanticErr, inv *Invoice) {
	f := &inv.Fa

	// Dates.
	ok := false
	for _, layout := range dateTimeLayouts {
		if _, err := time.Parse(layout, inv.Naglowek.DataWytworzeniaFa); err == nil {
			ok = true
			break
		}
	}
	if !ok {
		s.add("DataWytworzeniaFa: %q is not a valid date and time", inv.Naglowek.DataWytworzeniaFa)
	}
	issued, issuedOK := s.date(named("P_1"), f.P_1)
	if f.P_1 == "" {
		s.add("P_1 (issue date) is missing")
	}
	s.date(named("P_6"), f.P_6)
	if f.OkresFa != nil {
		from, ok1 := s.date(named("P_6_Od"), f.OkresFa.P_6_Od)
		to, ok2 := s.date(named("P_6_Do"), f.OkresFa.P_6_Do)
		if ok1 && ok2 && to.Before(from) {
			s.add("OkresFa: P_6_Do %s is before P_6_Od %s", f.OkresFa.P_6_Do, f.OkresFa.P_6_Od)
		}
	}
	for i, k := range f.DaneFaKorygowanej {
		d, ok := s.date(fieldName{"DaneFaKorygowanej", i + 1, "DataWystFaKorygowanej"}, k.DataWystFaKorygowanej)
		if ok && issuedOK && d.After(issued) {
			s.add("DaneFaKorygowanej[%d]: corrected invoice dated %s, after the correction's issue date %s", i+1, k.DataWystFaKorygowanej, f.P_1)
		}
	}
	for i, w := range f.FaWiersz {
		s.date(fieldName{"FaWiersz", i + 1, "P_6A"}, w.P_6A)
	}
	if p := f.Platnosc; p != nil {
		s.date(named("Platnosc/DataZaplaty"), p.DataZaplaty)
		for i, t := range p.TerminPlatnosci {
			s.date(fieldName{"Platnosc/TerminPlatnosci", i + 1, "Termin"}, t.Termin)
		}
		for i, z := range p.ZaplataCzesciowa {
			s.date(fieldName{"Platnosc/ZaplataCzesciowa", i + 1, "DataZaplatyCzesciowej"}, z.DataZaplatyCzesciowej)
		}
	}

	// Correction data.
	if inv.IsCorrection() && len(f.DaneFaKorygowanej) == 0 {
		s.add("%s invoice without DaneFaKorygowanej (the corrected invoice)", f.RodzajFaktury)
	}

	// Totals.
	total, hasTotal := s.decimal(named("P_15"), f.P_15)
	sum, present := num{}, false
	for _, a := range f.amountFields() {
		if v, ok := s.decimal(named(a.name), a.value); ok {
			sum = sum.add(v)
			present = true
		}
	}
	if hasTotal && present && !within(total, sum, hundredths(1)) {
		s.add("P_15 %s does not equal the sum of the net and VAT totals %s", f.P_15, formatDecimal(sum.rat(), 2, 2))
	}
	lineTol := hundredths(int64(max(1, len(f.FaWiersz))))
	for _, g := range []struct {
		net, vat, netName, vatName string
		rates                      []int64
	}{
		{f.P_13_1, f.P_14_1, "P_13_1", "P_14_1", []int64{23, 22}},
		{f.P_13_2, f.P_14_2, "P_13_2", "P_14_2", []int64{8, 7}},
		{f.P_13_3, f.P_14_3, "P_13_3", "P_14_3", []int64{5}},
	} {
		net, okNet := s.decimal(named(g.netName), g.net)
		vat, okVat := s.decimal(named(g.vatName), g.vat)
		if !okNet || !okVat {
			continue
		}
		match := false
		for _, r := range g.rates {
			if within(net.mul(hundredths(r)), vat, lineTol) {
				match = true
				break
			}
		}
		if !match {
			s.add("%s %s is not %v%% of %s %s", g.vatName, g.vat, g.rates, g.netName, g.net)
		}
	}
	if f.KodWaluty == "PLN" {
		for _, w := range []struct{ name, v string }{{"P_14_1W", f.P_14_1W}, {"P_14_2W", f.P_14_2W}, {"P_14_3W", f.P_14_3W}, {"P_14_4W", f.P_14_4W}} {
			if w.v != "" {
				s.add("%s (VAT converted to PLN) on an invoice in PLN", w.name)
			}
		}
	}

	// Lines.
	seen := make(map[string]bool, len(f.FaWiersz))
	for i, w := range f.FaWiersz {
		name := fieldName{"FaWiersz", i + 1, ""}
		if seen[w.NrWierszaFa] {
			s.add("%s: duplicate NrWierszaFa %s", name, w.NrWierszaFa)
		}
		seen[w.NrWierszaFa] = true
		qty, hasQty := s.decimal(fieldName{"FaWiersz", i + 1, "P_8B"}, w.P_8B)
		discount, hasDiscount := s.decimal(fieldName{"FaWiersz", i + 1, "P_10"}, w.P_10)
		for _, p := range [...]struct{ price, value, priceName, valueName string }{
			{w.P_9A, w.P_11, "P_9A", "P_11"},
			{w.P_9B, w.P_11A, "P_9B", "P_11A"},
		} {
			price, hasPrice := s.decimal(fieldName{"FaWiersz", i + 1, p.priceName}, p.price)
			value, hasValue := s.decimal(fieldName{"FaWiersz", i + 1, p.valueName}, p.value)
			if hasQty && hasPrice && hasValue {
				checkLine(s, name, qty, price, value, discount, hasDiscount, p.priceName, p.valueName)
			}
		}
	}

	// Settlement.
	if r := f.Rozliczenie; r != nil {
		checkSum(s, "SumaObciazen", r.SumaObciazen, r.Obciazenia)
		checkSum(s, "SumaOdliczen", r.SumaOdliczen, r.Odliczenia)
	}

	// Shares of additional buyers.
	shares := num{}
	for i, p := range inv.Podmiot3 {
		if v, ok := s.decimal(fieldName{"Podmiot3", i + 1, "Udzial"}, p.Udzial); ok {
			shares = shares.add(v)
		}
	}
	if shares.cmp(fixed(100, 0)) > 0 {
		s.add("Podmiot3: shares (Udzial) add up to %s%%, more than 100%%", formatDecimal(shares.rat(), 6, 0))
	}
}

// checkLine checks value against qty × price − discount (see CheckSemantics).
func checkLine(s *semanticErr, name fieldName, qty, price, value, discount num, hasDiscount bool, priceName, valueName string) {
	gross := qty.mul(price)
	if hasDiscount {
		want := gross.sub(discount)
		if !within(want, value, hundredths(1)) {
			s.add("%s: %s %s does not equal P_8B × %s − P_10 = %s", name, valueName, formatDecimal(value.rat(), 2, 2), priceName, formatDecimal(want.rat(), 2, 2))
		}
		return
	}
	if value.abs().cmp(gross.abs().add(hundredths(1))) > 0 {
		s.add("%s: %s %s exceeds P_8B × %s = %s", name, valueName, formatDecimal(value.rat(), 2, 2), priceName, formatDecimal(gross.rat(), 2, 2))
	}
}

// hundredths returns n/100.
func hundredths(n int64) num { return fixed(n, 2) }

func checkSum(s *semanticErr, name, total string, items []KwotaPowod) {
	want, ok := s.decimal(named(name), total)
	if !ok {
		return
	}
	sum := num{}
	for i, it := range items {
		if v, ok := s.decimal(named(name+" item "+strconv.Itoa(i+1)), it.Kwota); ok {
			sum = sum.add(v)
		}
	}
	if !within(want, sum, hundredths(1)) {
		s.add("%s %s does not equal the sum of its items %s", name, total, formatDecimal(sum.rat(), 2, 2))
	}
}
