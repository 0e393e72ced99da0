package fa3

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValidSamples(t *testing.T) {
	for _, s := range samples(t, "valid") {
		t.Run(s.name, func(t *testing.T) {
			inv, err := Parse(s.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for name, v := range map[string]string{
				"SellerNIP":         inv.SellerNIP(),
				"InvoiceNumber":     inv.InvoiceNumber(),
				"InvoiceType":       inv.InvoiceType(),
				"IssueDate":         inv.IssueDate(),
				"KodWaluty":         inv.Fa.KodWaluty,
				"P_15":              inv.Fa.P_15,
				"KodFormularza":     inv.Naglowek.KodFormularza.Value,
				"kodSystemowy":      inv.Naglowek.KodFormularza.KodSystemowy,
				"DataWytworzeniaFa": inv.Naglowek.DataWytworzeniaFa,
				"Seller Nazwa":      inv.Podmiot1.DaneIdentyfikacyjne.Nazwa,
				"Seller AdresL1":    inv.Podmiot1.Adres.AdresL1,
				"P_16":              inv.Fa.Adnotacje.P_16,
				"JST":               inv.Podmiot2.JST,
			} {
				if strings.TrimSpace(v) == "" {
					t.Errorf("%s is empty", name)
				}
			}
			id := inv.Podmiot2.DaneIdentyfikacyjne
			if id.NIP == "" && id.NrVatUE == "" && id.NrID == "" && id.BrakID == "" {
				t.Error("buyer has no identifier")
			}
			if inv.IsCorrection() && len(inv.Fa.DaneFaKorygowanej) == 0 {
				t.Error("correction without DaneFaKorygowanej")
			}
			for i, w := range inv.Fa.FaWiersz {
				if w.NrWierszaFa == "" {
					t.Errorf("FaWiersz[%d] has no NrWierszaFa", i)
				}
			}
		})
	}
}

// TestParseSampleDetails pins fields of specific samples so that a wrong tag
// in the model (which encoding/xml silently ignores) is caught.
func TestParseSampleDetails(t *testing.T) {
	inv, err := Parse(readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(inv.Podmiot3); got != 13 {
		t.Errorf("Podmiot3 count = %d, want 13", got)
	}
	if p := inv.Podmiot3[len(inv.Podmiot3)-1]; p.RolaInna != "1" || p.OpisRoli != "Obserwator" {
		t.Errorf("last Podmiot3 = %+v", p)
	}
	if inv.Podmiot3[0].Udzial != "50" || inv.Podmiot3[0].Adres.GLN != "RYM2" {
		t.Errorf("Podmiot3[0] = %+v", inv.Podmiot3[0])
	}
	if inv.Fa.P_13_7 != "4001.49" || inv.Fa.Adnotacje.Zwolnienie.P_19N != "1" || inv.Fa.Adnotacje.PMarzy.P_PMarzyN != "1" {
		t.Errorf("Fa = %+v", inv.Fa)
	}
	if len(inv.Fa.FaWiersz) != 2 || inv.Fa.FaWiersz[0].P_8B != "8.0" || inv.Fa.FaWiersz[1].P_12 != "zw" || inv.Fa.FaWiersz[0].KursWaluty != "4.2142" {
		t.Errorf("FaWiersz = %+v", inv.Fa.FaWiersz)
	}
	if inv.Fa.Platnosc == nil || inv.Fa.Platnosc.FormaPlatnosci != "1" {
		t.Errorf("Platnosc = %+v", inv.Fa.Platnosc)
	}
	if inv.Podmiot2.IDNabywcy != "12345" || inv.Podmiot2.AdresKoresp == nil {
		t.Errorf("Podmiot2 = %+v", inv.Podmiot2)
	}
}

func TestParseRefuses(t *testing.T) {
	const ok = `<Faktura xmlns="` + Namespace + `"><Naglowek/></Faktura>`
	tests := []struct {
		name string
		in   string
		kind ErrorKind
	}{
		{"empty", "", KindEmpty},
		{"whitespace", " \n\t", KindEmpty},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + ok, KindDTD},
		{"doctype without subset", `<!DOCTYPE Faktura SYSTEM "file:///etc/passwd">` + ok, KindDTD},
		{"utf16 bom", "\xFF\xFE<\x00", KindNotWellFormed},
		{"latin2", `<?xml version="1.0" encoding="ISO-8859-2"?>` + ok, KindNotWellFormed},
		{"truncated", `<Faktura xmlns="` + Namespace + `"><Naglowek>`, KindNotWellFormed},
		{"mismatched", `<Faktura xmlns="` + Namespace + `"><a></b></Faktura>`, KindNotWellFormed},
		{"two roots", ok + ok, KindNotWellFormed},
		{"text before root", "x" + ok, KindNotWellFormed},
		{"fa2", `<Faktura xmlns="` + FA2Namespace + `"/>`, KindNotFA3},
		{"no namespace", `<Faktura/>`, KindNotFA3},
		{"wrong root", `<Invoice xmlns="` + Namespace + `"/>`, KindNotFA3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if ve.Kind != tt.kind {
				t.Fatalf("kind = %v (%v), want %v", ve.Kind, ve, tt.kind)
			}
			if ve.Message == "" {
				t.Error("empty message")
			}
		})
	}
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("minimal document: %v", err)
	}
}

func TestDuplicateKey(t *testing.T) {
	a, err := Parse(readSample(t, "valid", "podstawowa-FA_3_Przyklad_2.xml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(readSample(t, "valid", "qr_test-nip.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if a.DuplicateKey() == "" || a.DuplicateKey() == b.DuplicateKey() && a.InvoiceNumber() != b.InvoiceNumber() {
		t.Fatalf("keys %q %q", a.DuplicateKey(), b.DuplicateKey())
	}
	c := *a
	c.Fa.P_2 = a.Fa.P_2 + "x"
	if c.DuplicateKey() == a.DuplicateKey() {
		t.Fatal("different numbers give the same key")
	}
}
