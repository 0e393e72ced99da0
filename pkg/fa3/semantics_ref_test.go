package fa3

import (
	"fmt"
	"math/big"
	"time"
)

// refSemanticErr collects the first semantic error.
type refSemanticErr struct{ err *ValidationError }

func (s *refSemanticErr) add(format string, args ...any) {
	if s.err == nil {
		s.err = verr(KindSemantic, 0, format, args...)
	}
}

func (s *refSemanticErr) decimal(name, v string) *big.Rat {
	if v == "" {
		return nil
	}
	r, err := parseDecimal(v)
	if err != nil {
		s.add("%s: %v", name, err)
		return nil
	}
	return r
}

func (s *refSemanticErr) date(name, v string) (time.Time, bool) {
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

// checkSemanticsRef is CheckSemantics as it was with big.Rat throughout,
// kept as the reference that the fixed-point version must agree with.
func checkSemanticsRef(inv *Invoice) error {
	if inv == nil {
		return verr(KindSemantic, 0, "no invoice")
	}
	var s refSemanticErr
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
	issued, issuedOK := s.date("P_1", f.P_1)
	if f.P_1 == "" {
		s.add("P_1 (issue date) is missing")
	}
	s.date("P_6", f.P_6)
	if f.OkresFa != nil {
		from, ok1 := s.date("P_6_Od", f.OkresFa.P_6_Od)
		to, ok2 := s.date("P_6_Do", f.OkresFa.P_6_Do)
		if ok1 && ok2 && to.Before(from) {
			s.add("OkresFa: P_6_Do %s is before P_6_Od %s", f.OkresFa.P_6_Do, f.OkresFa.P_6_Od)
		}
	}
	for i, k := range f.DaneFaKorygowanej {
		d, ok := s.date(fmt.Sprintf("DaneFaKorygowanej[%d]/DataWystFaKorygowanej", i+1), k.DataWystFaKorygowanej)
		if ok && issuedOK && d.After(issued) {
			s.add("DaneFaKorygowanej[%d]: corrected invoice dated %s, after the correction's issue date %s", i+1, k.DataWystFaKorygowanej, f.P_1)
		}
	}
	for i, w := range f.FaWiersz {
		s.date(fmt.Sprintf("FaWiersz[%d]/P_6A", i+1), w.P_6A)
	}
	if p := f.Platnosc; p != nil {
		s.date("Platnosc/DataZaplaty", p.DataZaplaty)
		for i, t := range p.TerminPlatnosci {
			s.date(fmt.Sprintf("Platnosc/TerminPlatnosci[%d]/Termin", i+1), t.Termin)
		}
		for i, z := range p.ZaplataCzesciowa {
			s.date(fmt.Sprintf("Platnosc/ZaplataCzesciowa[%d]/DataZaplatyCzesciowej", i+1), z.DataZaplatyCzesciowej)
		}
	}

	// Correction data.
	if inv.IsCorrection() && len(f.DaneFaKorygowanej) == 0 {
		s.add("%s invoice without DaneFaKorygowanej (the corrected invoice)", f.RodzajFaktury)
	}

	// Totals.
	total := s.decimal("P_15", f.P_15)
	sum, present := new(big.Rat), false
	for _, a := range f.amountFields() {
		if v := s.decimal(a.name, a.value); v != nil {
			sum.Add(sum, v)
			present = true
		}
	}
	if total != nil && present && absDiff(total, sum).Cmp(hundredth) > 0 {
		s.add("P_15 %s does not equal the sum of the net and VAT totals %s", f.P_15, formatDecimal(sum, 2, 2))
	}
	lineTol := new(big.Rat).Mul(hundredth, big.NewRat(int64(max(1, len(f.FaWiersz))), 1))
	for _, g := range []struct {
		net, vat, netName, vatName string
		rates                      []int64
	}{
		{f.P_13_1, f.P_14_1, "P_13_1", "P_14_1", []int64{23, 22}},
		{f.P_13_2, f.P_14_2, "P_13_2", "P_14_2", []int64{8, 7}},
		{f.P_13_3, f.P_14_3, "P_13_3", "P_14_3", []int64{5}},
	} {
		net, vat := s.decimal(g.netName, g.net), s.decimal(g.vatName, g.vat)
		if net == nil || vat == nil {
			continue
		}
		match := false
		for _, r := range g.rates {
			want := new(big.Rat).Mul(net, big.NewRat(r, 100))
			if absDiff(want, vat).Cmp(lineTol) <= 0 {
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
		name := fmt.Sprintf("FaWiersz[%d]", i+1)
		if seen[w.NrWierszaFa] {
			s.add("%s: duplicate NrWierszaFa %s", name, w.NrWierszaFa)
		}
		seen[w.NrWierszaFa] = true
		qty := s.decimal(name+"/P_8B", w.P_8B)
		discount := s.decimal(name+"/P_10", w.P_10)
		refCheckLine(&s, name, qty, s.decimal(name+"/P_9A", w.P_9A), discount, s.decimal(name+"/P_11", w.P_11), "P_9A", "P_11")
		refCheckLine(&s, name, qty, s.decimal(name+"/P_9B", w.P_9B), discount, s.decimal(name+"/P_11A", w.P_11A), "P_9B", "P_11A")
	}

	// Settlement.
	if r := f.Rozliczenie; r != nil {
		refCheckSum(&s, "SumaObciazen", r.SumaObciazen, r.Obciazenia)
		refCheckSum(&s, "SumaOdliczen", r.SumaOdliczen, r.Odliczenia)
	}

	// Shares of additional buyers.
	shares := new(big.Rat)
	for i, p := range inv.Podmiot3 {
		if v := s.decimal(fmt.Sprintf("Podmiot3[%d]/Udzial", i+1), p.Udzial); v != nil {
			shares.Add(shares, v)
		}
	}
	if shares.Cmp(big.NewRat(100, 1)) > 0 {
		s.add("Podmiot3: shares (Udzial) add up to %s%%, more than 100%%", formatDecimal(shares, 6, 0))
	}

	if s.err != nil {
		return s.err
	}
	return nil
}

// checkLine checks value against qty × price − discount (see CheckSemantics).
func refCheckLine(s *refSemanticErr, name string, qty, price, discount, value *big.Rat, priceName, valueName string) {
	if qty == nil || price == nil || value == nil {
		return
	}
	gross := new(big.Rat).Mul(qty, price)
	if discount != nil {
		want := new(big.Rat).Sub(gross, discount)
		if absDiff(want, value).Cmp(hundredth) > 0 {
			s.add("%s: %s %s does not equal P_8B × %s − P_10 = %s", name, valueName, formatDecimal(value, 2, 2), priceName, formatDecimal(want, 2, 2))
		}
		return
	}
	limit := new(big.Rat).Abs(gross)
	limit.Add(limit, hundredth)
	if new(big.Rat).Abs(value).Cmp(limit) > 0 {
		s.add("%s: %s %s exceeds P_8B × %s = %s", name, valueName, formatDecimal(value, 2, 2), priceName, formatDecimal(gross, 2, 2))
	}
}

func refCheckSum(s *refSemanticErr, name, total string, items []KwotaPowod) {
	want := s.decimal(name, total)
	if want == nil {
		return
	}
	sum := new(big.Rat)
	for i, it := range items {
		if v := s.decimal(fmt.Sprintf("%s item %d", name, i+1), it.Kwota); v != nil {
			sum.Add(sum, v)
		}
	}
	if absDiff(want, sum).Cmp(hundredth) > 0 {
		s.add("%s %s does not equal the sum of its items %s", name, total, formatDecimal(sum, 2, 2))
	}
}

var hundredth = big.NewRat(1, 100)

// absDiff returns |a-b|.
func absDiff(a, b *big.Rat) *big.Rat {
	d := new(big.Rat).Sub(a, b)
	return d.Abs(d)
}
