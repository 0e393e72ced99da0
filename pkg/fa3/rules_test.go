package fa3

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDiscouraged(t *testing.T) {
	tests := []struct {
		r    rune
		want bool
	}{
		{0x7E, false}, {0x7F, true}, {0x84, true}, {0x85, false}, {0x86, true}, {0x9F, true}, {0xA0, false},
		{0xFDCF, false}, {0xFDD0, true}, {0xFDEF, true}, {0xFDF0, false},
		{0xFFFD, false}, {0x1FFFD, false}, {0x1FFFE, true}, {0x1FFFF, true}, {0x20000, false},
		{0xAFFFE, true}, {0x10FFFD, false}, {0x10FFFE, true}, {0x10FFFF, true}, {'ż', false},
	}
	for _, tt := range tests {
		if got := Discouraged(tt.r); got != tt.want {
			t.Errorf("Discouraged(U+%04X) = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestDocumentRules(t *testing.T) {
	v := newXSDValidator(t)
	data := readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml")
	name := []byte("<Nazwa>")
	if !bytes.Contains(data, name) {
		t.Fatal("sample changed: no Nazwa")
	}
	in := func(s string) []byte { return bytes.Replace(data, name, []byte("<Nazwa>"+s), 1) }
	tests := []struct {
		name string
		in   []byte
		kind ErrorKind // 0: accepted
	}{
		{"as published", data, 0},
		{"BOM", append([]byte("\xEF\xBB\xBF"), data...), KindRule},
		{"PI after the prolog", bytes.Replace(data, []byte("?>"), []byte("?><?xml-stylesheet href=\"a.xsl\"?>"), 1), KindRule},
		{"PI after the root", append(bytes.Clone(data), "<?x y?>"...), KindRule},
		{"comment is fine", append(bytes.Clone(data), "<!-- <?x y?> -->"...), 0},
		{"<? in CDATA is text", in("<![CDATA[<?x?>]]>"), 0},
		{"U+0086", in("\u0086"), KindRule},
		{"U+0085 is between the ranges", in("\u0085"), 0},
		{"U+FDD0", in("\uFDD0"), KindRule},
		{"U+10FFFF", in("\U0010FFFF"), KindRule},
		{"&#x86; as a reference", in("&#x86;"), KindRule},
		{"&#134; as a decimal reference", in("&#134;"), KindRule},
		{"&#x85; as a reference", in("&#x85;"), 0},
		{"windows-1250", bytes.Replace(data, []byte(`encoding="utf-8"`), []byte(`encoding="windows-1250"`), 1), KindNotWellFormed},
		{"utf-8 in lower case", data, 0},
		{"UTF-8", bytes.Replace(data, []byte(`encoding="utf-8"`), []byte(`encoding="UTF-8"`), 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), tt.in)
			if k := KindOf(err); k != tt.kind {
				t.Fatalf("kind = %v, want %v (%v)", k, tt.kind, err)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	v := newXSDValidator(t)
	pad := func(x []byte, size int) []byte {
		x = bytes.TrimRight(x, "\n ")
		return append(append(bytes.Clone(x), "\n<!--"...), append(bytes.Repeat([]byte("x"), size-len(x)-len("\n<!---->")), "-->"...)...)
	}
	plain := readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml")
	attach := readSample(t, "valid", "zalacznik-FA_3_Zalacznik_Przyklad_1.xml")
	tests := []struct {
		name string
		in   []byte
		kind ErrorKind
	}{
		{"1,000,000 bytes", pad(plain, MaxInvoiceSize), 0},
		{"1,000,001 bytes", pad(plain, MaxInvoiceSize+1), KindTooLarge},
		{"3,000,000 bytes with attachments", pad(attach, MaxInvoiceSizeWithAttachments), 0},
		{"3,000,001 bytes with attachments", pad(attach, MaxInvoiceSizeWithAttachments+1), KindTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), tt.in)
			if k := KindOf(err); k != tt.kind {
				t.Fatalf("len %d: kind = %v, want %v (%v)", len(tt.in), k, tt.kind, err)
			}
		})
	}
}

func TestCheckIssueDate(t *testing.T) {
	inv := &Invoice{}
	// 23:30 UTC on 1 March is 00:30 on 2 March in Poland.
	accepted := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		p1   string
		fail bool
	}{
		{"2026-03-02", false}, {"2026-03-01", false}, {"2020-01-01", false}, {"2026-03-03", true}, {"2027-03-02", true},
	}
	for _, tt := range tests {
		inv.Fa.P_1 = tt.p1
		err := CheckIssueDate(inv, accepted)
		if (err != nil) != tt.fail || (err != nil && KindOf(err) != KindIssueDate) {
			t.Errorf("P_1 %s: %v", tt.p1, err)
		}
	}
}

func TestValidNIP(t *testing.T) {
	for nip, want := range map[string]bool{
		"5265877635": true, "6891152920": true, "1111111111": true,
		"5265877636": false, "1234567890": false, "526587763": false, "52658776a5": false,
	} {
		if ValidNIP(nip) != want {
			t.Errorf("ValidNIP(%s) = %v", nip, !want)
		}
	}
}

func TestCheckNIPs(t *testing.T) {
	good := func() *Invoice {
		inv := &Invoice{}
		inv.Podmiot1.DaneIdentyfikacyjne.NIP = "5265877635"
		inv.Podmiot2.DaneIdentyfikacyjne.NIP = "6891152920"
		inv.Podmiot3 = []Podmiot3{{DaneIdentyfikacyjne: DaneIdentyfikacyjne{IDWew: "5265877635-00001"}}}
		inv.PodmiotUpowazniony = &PodmiotUpowazniony{DaneIdentyfikacyjne: DaneIdentyfikacyjne{NIP: "1111111111"}}
		return inv
	}
	tests := []struct {
		name   string
		mutate func(*Invoice)
		want   string
	}{
		{"all valid", func(*Invoice) {}, ""},
		{"seller", func(i *Invoice) { i.Podmiot1.DaneIdentyfikacyjne.NIP = "5265877636" }, "Podmiot1"},
		{"buyer", func(i *Invoice) { i.Podmiot2.DaneIdentyfikacyjne.NIP = "6891152921" }, "Podmiot2"},
		{"buyer without NIP", func(i *Invoice) { i.Podmiot2.DaneIdentyfikacyjne = DaneIdentyfikacyjne{BrakID: "1"} }, ""},
		{"third party", func(i *Invoice) { i.Podmiot3[0].DaneIdentyfikacyjne.NIP = "1234567890" }, "Podmiot3[1]"},
		{"internal id", func(i *Invoice) { i.Podmiot3[0].DaneIdentyfikacyjne.IDWew = "5265877636-00001" }, "internal identifier"},
		{"authorised entity", func(i *Invoice) { i.PodmiotUpowazniony.DaneIdentyfikacyjne.NIP = "1111111112" }, "PodmiotUpowazniony"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := good()
			tt.mutate(inv)
			err := CheckNIPs(inv)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if KindOf(err) != KindNIP || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestWarningsListsEveryProblem(t *testing.T) {
	inv, err := Parse(readSample(t, "valid", "podstawowa-FA_3_Przyklad_5.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if w := Warnings(inv); w != nil {
		t.Fatalf("published sample warned: %v", w)
	}
	inv.Fa.P_15 = "1.00"
	inv.Fa.P_14_1 = "0.01"
	w := Warnings(inv)
	if len(w) < 2 || !strings.Contains(strings.Join(w, "\n"), "P_15") || !strings.Contains(strings.Join(w, "\n"), "P_14_1") {
		t.Fatalf("warnings %q", w)
	}
	if first := CheckSemantics(inv); first == nil || first.(*ValidationError).Message != w[0] {
		t.Fatalf("CheckSemantics %v is not the first warning %q", first, w[0])
	}
	for range 40 {
		inv.Fa.FaWiersz = append(inv.Fa.FaWiersz, FaWiersz{NrWierszaFa: "1"})
	}
	if w := Warnings(inv); len(w) != maxWarnings+1 || !strings.HasPrefix(w[maxWarnings], "and ") {
		t.Fatalf("%d warnings, last %q", len(w), w[len(w)-1])
	}
}
