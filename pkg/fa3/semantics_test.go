package fa3

import (
	"strings"
	"testing"
)

// TestWarningsOfValidSamples: KSeF accepts the published samples whatever their arithmetic, so
// what CheckSemantics finds in them is only advice; Warnings lists it, starting with
// CheckSemantics' first finding.
func TestWarningsOfValidSamples(t *testing.T) {
	for _, s := range samples(t, "valid") {
		t.Run(s.name, func(t *testing.T) {
			inv, err := Parse(s.data)
			if err != nil {
				t.Fatal(err)
			}
			first, w := CheckSemantics(inv), Warnings(inv)
			if (first == nil) != (len(w) == 0) || first != nil && first.(*ValidationError).Message != w[0] {
				t.Fatalf("CheckSemantics %v, Warnings %q", first, w)
			}
			if len(w) > 0 {
				t.Logf("warnings: %q", w)
			}
		})
	}
}

func TestCheckSemanticsRefuses(t *testing.T) {
	base := func(t *testing.T) *Invoice {
		inv, err := Parse(readSample(t, "valid", "podstawowa-FA_3_Przyklad_5.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSemantics(inv); err != nil {
			t.Fatal(err)
		}
		return inv
	}
	tests := []struct {
		name   string
		mutate func(*Invoice)
		want   string
	}{
		{"P_15 off by a grosz too many", func(i *Invoice) { i.Fa.P_15 = "955.73" }, "P_15"},
		{"P_15 not a number", func(i *Invoice) { i.Fa.P_15 = "1e3" }, "P_15"},
		{"VAT not 23% of net", func(i *Invoice) { i.Fa.P_14_1 = "170.00"; i.Fa.P_15 = "947.00" }, "P_14_1"},
		{"bad issue date", func(i *Invoice) { i.Fa.P_1 = "2026-02-30" }, "P_1"},
		{"bad line date", func(i *Invoice) { i.Fa.FaWiersz[0].P_6A = "2026-13-01" }, "P_6A"},
		{"bad creation time", func(i *Invoice) { i.Naglowek.DataWytworzeniaFa = "yesterday" }, "DataWytworzeniaFa"},
		{"reversed period", func(i *Invoice) { i.Fa.OkresFa = &OkresFa{P_6_Od: "2026-02-10", P_6_Do: "2026-02-01"} }, "P_6_Do"},
		{"line value above qty × price", func(i *Invoice) { i.Fa.FaWiersz[0].P_8B = "0.5" }, "FaWiersz[1]"},
		{"discount inconsistent", func(i *Invoice) { i.Fa.FaWiersz[1].P_10 = "5" }, "P_10"},
		{"duplicate line number", func(i *Invoice) { i.Fa.FaWiersz[1].NrWierszaFa = i.Fa.FaWiersz[0].NrWierszaFa }, "duplicate"},
		{"KOR without corrected invoice", func(i *Invoice) { i.Fa.RodzajFaktury = TypeKOR }, "DaneFaKorygowanej"},
		{"corrected invoice after correction", func(i *Invoice) {
			i.Fa.RodzajFaktury = TypeKOR
			i.Fa.DaneFaKorygowanej = []DaneFaKorygowanej{{DataWystFaKorygowanej: "2027-01-01", NrFaKorygowanej: "1", NrKSeFN: "1"}}
		}, "after"},
		{"W field in PLN", func(i *Invoice) { i.Fa.P_14_1W = "178.71" }, "P_14_1W"},
		{"shares over 100", func(i *Invoice) { i.Podmiot3 = []Podmiot3{{Udzial: "60"}, {Udzial: "40.01"}} }, "Udzial"},
		{"settlement sums", func(i *Invoice) {
			i.Fa.Rozliczenie = &Rozliczenie{Obciazenia: []KwotaPowod{{Kwota: "1", Powod: "x"}}, SumaObciazen: "2"}
		}, "SumaObciazen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := base(t)
			tt.mutate(inv)
			err := CheckSemantics(inv)
			if KindOf(err) != KindSemantic {
				t.Fatalf("err = %v, want KindSemantic", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want mention of %s", err, tt.want)
			}
		})
	}
}

func TestCheckSemanticsAcceptsWithinRounding(t *testing.T) {
	inv, err := Parse(readSample(t, "valid", "podstawowa-FA_3_Przyklad_5.xml"))
	if err != nil {
		t.Fatal(err)
	}
	inv.Fa.FaWiersz[0].P_10 = "22"
	inv.Fa.FaWiersz[0].P_11 = "200.00"
	inv.Fa.P_13_1 = "755.00"
	inv.Fa.P_14_1 = "173.65"
	inv.Fa.P_15 = "928.66" // one grosz off the sum: rounding
	if err := CheckSemantics(inv); err != nil {
		t.Fatal(err)
	}
}
