package fa3

import (
	"encoding/xml"
	"math/big"
	"reflect"
	"testing"
)

// trickyDecimals exercise parseNum's edges: the lexical forms, the
// fixed-point limits (18 digits) and what lies beyond them.
var trickyDecimals = []string{
	"", "0", "-0", "+0.00", " 12.5 ", "\t7\n", ".5", "5.", "-.25", "1.", "0.01", "-0.01", "100",
	"999999999999999999", "-999999999999999999", "9999999999999999.99", "1000000000000000000",
	"9223372036854775807", "-9223372036854775808", "99999999999999999999.99", "0.000000000000000001",
	"0.0000000000000000001", "123456789012.12345678", "00000000000000000000000001.5",
	"1e5", "1.2.3", "-", "+", ".", "abc", "１２", "1,5", "--1", "+-1", " ", "1 000",
}

// TestCheckSemanticsMatchesReference compares CheckSemantics with the
// big.Rat reference on the samples, generated invoices and invoices whose
// amounts are replaced by tricky values.
func TestCheckSemanticsMatchesReference(t *testing.T) {
	var bases []*Invoice
	for _, s := range samples(t, "valid") {
		inv, err := Parse(s.data)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		bases = append(bases, inv)
	}
	for _, data := range generatedInvoices(t) {
		inv, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, inv)
	}
	same := func(inv *Invoice) {
		t.Helper()
		got, want := CheckSemantics(inv), checkSemanticsRef(inv)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("CheckSemantics = %v, the big.Rat reference gives %v", got, want)
		}
	}
	mutators := map[string]func(inv *Invoice, v string){
		"P_15":   func(inv *Invoice, v string) { inv.Fa.P_15 = v },
		"P_13_1": func(inv *Invoice, v string) { inv.Fa.P_13_1 = v },
		"P_14_1": func(inv *Invoice, v string) { inv.Fa.P_14_1 = v },
		"P_14_2": func(inv *Invoice, v string) { inv.Fa.P_14_2 = v },
		"line": func(inv *Invoice, v string) {
			if len(inv.Fa.FaWiersz) > 0 {
				w := &inv.Fa.FaWiersz[len(inv.Fa.FaWiersz)-1]
				w.P_8B, w.P_11 = v, v
			}
		},
		"P_9A":  func(inv *Invoice, v string) { setLine(inv, func(w *FaWiersz) { w.P_9A = v }) },
		"P_10":  func(inv *Invoice, v string) { setLine(inv, func(w *FaWiersz) { w.P_10 = v }) },
		"P_11A": func(inv *Invoice, v string) { setLine(inv, func(w *FaWiersz) { w.P_9B, w.P_11A = v, v }) },
		"Udzial": func(inv *Invoice, v string) {
			inv.Podmiot3 = append(inv.Podmiot3, Podmiot3{Udzial: v}, Podmiot3{Udzial: "50"})
		},
		"Rozliczenie": func(inv *Invoice, v string) {
			inv.Fa.Rozliczenie = &Rozliczenie{Obciazenia: []KwotaPowod{{Kwota: v}, {Kwota: "0.01"}}, SumaObciazen: v, Odliczenia: []KwotaPowod{{Kwota: "1"}}, SumaOdliczen: v}
		},
	}
	for bi, base := range bases {
		same(base)
		for name, mutate := range mutators {
			for _, v := range trickyDecimals {
				inv := cloneInvoice(t, base)
				mutate(inv, v)
				if !reflect.DeepEqual(CheckSemantics(inv), checkSemanticsRef(inv)) {
					t.Errorf("invoice %d, %s = %q: CheckSemantics %v, reference %v", bi, name, v, CheckSemantics(inv), checkSemanticsRef(inv))
				}
			}
		}
	}
}

func setLine(inv *Invoice, set func(*FaWiersz)) {
	if len(inv.Fa.FaWiersz) > 0 {
		set(&inv.Fa.FaWiersz[0])
	}
}

// cloneInvoice deep-copies inv by decoding its marshalled form.
func cloneInvoice(t testing.TB, inv *Invoice) *Invoice {
	t.Helper()
	data, err := xml.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeStd(data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzCheckSemantics compares CheckSemantics with the big.Rat reference on
// an invoice whose totals, line and shares come from the fuzzer.
func FuzzCheckSemantics(f *testing.F) {
	f.Add("123.00", "100.00", "23.00", "2.5", "40", "", "100.00", "30")
	f.Add("-12.30", "-10", "-2.3", "-1", "10.00", "0.5", "-9.5", "70.5")
	f.Add("1e3", "999999999999999999", "9223372036854775807", "99999999999999999999", "0.000000001", "1.", ".5", "100.000001")
	base := generatedInvoices(f)["VAT"]
	f.Fuzz(func(t *testing.T, p15, net, vat, qty, price, discount, value, share string) {
		inv, err := decodeStd(base)
		if err != nil {
			t.Fatal(err)
		}
		inv.Fa.P_15, inv.Fa.P_13_1, inv.Fa.P_14_1 = p15, net, vat
		w := &inv.Fa.FaWiersz[0]
		w.P_8B, w.P_9A, w.P_10, w.P_11, w.P_9B, w.P_11A = qty, price, discount, value, value, price
		inv.Podmiot3 = []Podmiot3{{Udzial: share}, {Udzial: share}}
		inv.Fa.Rozliczenie = &Rozliczenie{Obciazenia: []KwotaPowod{{Kwota: qty}, {Kwota: price}}, SumaObciazen: value}
		if got, want := CheckSemantics(inv), checkSemanticsRef(inv); !reflect.DeepEqual(got, want) {
			t.Fatalf("CheckSemantics = %v, the big.Rat reference gives %v", got, want)
		}
	})
}

// FuzzNum checks num's parsing and arithmetic against big.Rat.
func FuzzNum(f *testing.F) {
	for i, a := range trickyDecimals {
		f.Add(a, trickyDecimals[(i*7+3)%len(trickyDecimals)])
	}
	f.Add("999999999999999999", "9") // the product fits, twice the product does not
	f.Fuzz(func(t *testing.T, a, b string) {
		x, errX := parseNum(a)
		rx, refErr := parseDecimal(a)
		if !reflect.DeepEqual(errX, refErr) {
			t.Fatalf("parseNum(%q) error %v, parseDecimal %v", a, errX, refErr)
		}
		y, errY := parseNum(b)
		ry, _ := parseDecimal(b)
		if errX != nil || errY != nil {
			return
		}
		if x.rat().Cmp(rx) != 0 || y.rat().Cmp(ry) != 0 {
			t.Fatalf("parseNum(%q), parseNum(%q) = %s, %s", a, b, x.rat(), y.rat())
		}
		for _, op := range []struct {
			name string
			got  num
			want *big.Rat
		}{
			{"+", x.add(y), new(big.Rat).Add(rx, ry)},
			{"-", x.sub(y), new(big.Rat).Sub(rx, ry)},
			{"×", x.mul(y), new(big.Rat).Mul(rx, ry)},
			{"×100", x.mul(fixed(100, 0)).mul(x), new(big.Rat).Mul(new(big.Rat).Mul(rx, big.NewRat(100, 1)), rx)},
			{"xy+xy", x.mul(y).add(x.mul(y)), new(big.Rat).Mul(new(big.Rat).Mul(rx, ry), big.NewRat(2, 1))},
			{"xy-yx-xy", x.mul(y).sub(y.mul(x)).sub(x.mul(y)), new(big.Rat).Neg(new(big.Rat).Mul(rx, ry))},
			{"abs", x.abs(), new(big.Rat).Abs(rx)},
			{"neg", x.neg(), new(big.Rat).Neg(rx)},
		} {
			if op.got.rat().Cmp(op.want) != 0 {
				t.Fatalf("%s %s %s = %s, want %s", a, op.name, b, op.got.rat(), op.want)
			}
		}
		if got, want := x.cmp(y), rx.Cmp(ry); got != want {
			t.Fatalf("cmp(%s, %s) = %d, want %d", a, b, got, want)
		}
	})
}
