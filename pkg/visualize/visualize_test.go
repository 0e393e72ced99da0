package visualize

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/font/gofont/goregular"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

var languages = []Language{LangPL, LangEN, LangPLEN}

// expectations lists what any visualization of inv must show, formatted as
// the renderer prints it in lang.
func expectations(inv *fa3.Invoice, lang Language) []string {
	want := []string{inv.Fa.P_2, inv.Podmiot1.DaneIdentyfikacyjne.NIP, lang.amount(inv.Fa.P_15)}
	id := inv.Podmiot2.DaneIdentyfikacyjne
	for _, v := range []string{id.NIP, id.NrVatUE, id.NrID} {
		if v != "" {
			want = append(want, v)
		}
	}
	for _, w := range inv.Fa.FaWiersz {
		want = append(want, w.P_7)
	}
	for i := range want {
		want[i] = norm(want[i])
	}
	return want
}

func TestRenderSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir(t), "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no samples in %s", samplesDir(t))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := fa3.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, lang := range languages {
			t.Run(filepath.Base(file)+"/"+string(lang), func(t *testing.T) {
				want := expectations(inv, lang)

				pdf := render(t, data, Options{Format: FormatPDF, Language: lang})
				if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
					t.Fatalf("PDF output starts with %q", pdf[:min(len(pdf), 8)])
				}
				text := norm(strings.Join(pdfPages(t, pdf), "\n"))
				for _, w := range want {
					if !strings.Contains(text, w) {
						t.Errorf("PDF text lacks %q", w)
					}
				}

				page := render(t, data, Options{Format: FormatHTML, Language: lang})
				htmlText := htmlText(page)
				for _, w := range want {
					if !strings.Contains(htmlText, w) {
						t.Errorf("HTML lacks %q", w)
					}
				}
				// No fmt verb left unformatted and no label left untranslated.
				for name, out := range map[string]string{"PDF": text, "HTML": htmlText} {
					if strings.Contains(out, "%!") || strings.Contains(out, "%s") {
						t.Errorf("%s has a broken format verb", name)
					}
				}
				if t.Failed() {
					t.Logf("PDF text:\n%s", text)
				}
			})
		}
	}
}

// TestSectionsBothFormats checks that the PDF and the HTML show the same
// sections, in the language asked for.
func TestSectionsBothFormats(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(samplesDir(t), "korygujaca-FA_3_Przyklad_4.xml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		lang Language
		want []string
		not  []string
	}{
		{LangPL, []string{"Faktura korygująca", "Sprzedawca", "Nabywca", "Szczegóły", "Dane faktury korygowanej", "Przyczyna korekty: Test", "Podsumowanie stawek podatku", "Adnotacje", "Odwrotne obciążenie", "Płatność", "Przelew", "AT193100000154171012", "Kwota należności ogółem"}, []string{"Seller"}},
		{LangEN, []string{"Corrective invoice", "Seller", "Buyer", "Details", "Corrected invoice", "Reason for correction: Test", "VAT rate summary", "Annotations", "Reverse charge", "Payment", "Bank transfer", "AT193100000154171012", "Total amount due"}, []string{"Sprzedawca"}},
		{LangPLEN, []string{"Faktura korygująca / Corrective invoice", "Sprzedawca / Seller", "Nabywca / Buyer", "Podsumowanie stawek podatku / VAT rate summary", "Przelew / Bank transfer"}, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.lang), func(t *testing.T) {
			pdfText := norm(strings.Join(pdfPages(t, render(t, data, Options{Format: FormatPDF, Language: tt.lang})), "\n"))
			htmlText := htmlText(render(t, data, Options{Format: FormatHTML, Language: tt.lang}))
			for name, text := range map[string]string{"PDF": pdfText, "HTML": htmlText} {
				for _, w := range tt.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s lacks %q", name, w)
					}
				}
				for _, w := range tt.not {
					if strings.Contains(text, w) {
						t.Errorf("%s has %q from another language", name, w)
					}
				}
			}
			// Every corrected invoice is listed with its date.
			for _, d := range []string{"15.01.2025", "16.05.2025"} {
				if tt.lang != LangEN && !strings.Contains(pdfText, d) {
					t.Errorf("PDF lacks corrected invoice date %s", d)
				}
			}
		})
	}
}

func TestLongInvoicePaginates(t *testing.T) {
	const n = 1000
	data := manyLines(n)
	for _, lang := range languages {
		t.Run(string(lang), func(t *testing.T) {
			pages := pdfPages(t, render(t, data, Options{Format: FormatPDF, Language: lang}))
			if len(pages) < 10 {
				t.Fatalf("%d lines on %d pages", n, len(pages))
			}
			header := norm(lang.tr(colName))
			seen := 0
			for i, p := range pages {
				p = norm(p)
				label := lang.pageLabel(i+1, fmt.Sprint(len(pages)))
				if !strings.Contains(p, label) {
					t.Errorf("page %d lacks %q", i+1, label)
				}
				lines := strings.Count(p, "Pozycja ")
				if lines > 0 && !strings.Contains(p, header) {
					t.Errorf("page %d has %d lines but no table header %q", i+1, lines, header)
				}
				seen += lines
			}
			if seen != n {
				t.Errorf("found %d of %d lines", seen, n)
			}
			last := norm(pages[len(pages)-1] + pages[max(0, len(pages)-2)])
			if total := norm(lang.amount("12300.00")); !strings.Contains(last, total) {
				t.Errorf("last pages lack the total %q", total)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	samples := map[string][]byte{"long": manyLines(120)}
	sample, err := os.ReadFile(filepath.Join(samplesDir(t), "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	samples["sample"] = sample
	for name, data := range samples {
		for _, format := range []Format{FormatPDF, FormatHTML} {
			t.Run(name+"/"+string(format), func(t *testing.T) {
				opts := Options{Format: format, Language: LangPLEN}
				first := render(t, data, opts)
				// Concurrent renders on the shared Renderer give the same bytes.
				const workers = 4
				outs := make([][]byte, workers)
				errs := make([]error, workers)
				var wg sync.WaitGroup
				for i := range workers {
					wg.Go(func() {
						var buf bytes.Buffer
						errs[i] = testRenderer(t).Render(context.Background(), &buf, data, opts)
						outs[i] = buf.Bytes()
					})
				}
				wg.Wait()
				for i := range workers {
					if errs[i] != nil {
						t.Fatal(errs[i])
					}
					if !bytes.Equal(first, outs[i]) {
						t.Fatalf("render %d differs from the first (%d vs %d bytes)", i, len(outs[i]), len(first))
					}
				}
			})
		}
	}
	t.Run("creation date from the invoice", func(t *testing.T) {
		pdf := render(t, samples["sample"], Options{Format: FormatPDF})
		// DataWytworzeniaFa 2025-11-13T00:00:00Z, never the clock.
		if !bytes.Contains(pdf, []byte("/CreationDate (D:20251113000000)")) {
			t.Errorf("PDF creation date is not the invoice's DataWytworzeniaFa")
		}
	})
}

func TestPolishLetters(t *testing.T) {
	const letters = "Zażółć gęślą jaźń ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż"
	data := invoiceXML("FV/ŁÓDŹ/1", "Spółka Żółta", "Łąka Świętokrzyska", []line{
		{name: letters, unit: "usł.", qty: "1", price: "100.00", net: "100.00", rate: "23"},
	}, "100.00", "23.00", "123.00")
	for _, lang := range languages {
		text := norm(strings.Join(pdfPages(t, render(t, data, Options{Format: FormatPDF, Language: lang})), "\n"))
		for _, w := range []string{letters, "FV/ŁÓDŹ/1", "Spółka Żółta", "Łąka Świętokrzyska", "00-950 Łódź", "ul. Śląska 1"} {
			if !strings.Contains(text, w) {
				t.Errorf("%s: PDF text lacks %q", lang, w)
			}
		}
	}
	if !strings.Contains(norm(strings.Join(pdfPages(t, render(t, data, Options{Format: FormatPDF, Language: LangPL})), "\n")), "Podsumowanie stawek podatku") {
		t.Error("Polish labels lost their letters")
	}
}

func TestHTMLEscaping(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	data := invoiceXML(`FV/<b>1</b>`, "Seller "+evil, `Buyer & Sons <img src=x onerror=alert(1)>`, []line{
		{name: evil, unit: "szt", qty: "1", price: "1.00", net: "1.00", rate: "23"},
	}, "1.00", "0.23", "1.23")
	out := string(render(t, data, Options{Format: FormatHTML, Language: LangPL}))
	for _, bad := range []string{"<script>", "<img", "<b>1</b>"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;") {
		t.Error("escaped name missing from HTML")
	}
	if n := strings.Count(out, "<style>"); n != 1 || strings.Contains(out, "<link") || strings.Contains(out, "src=\"http") {
		t.Errorf("HTML is not self-contained (%d style elements)", n)
	}
	// The same text reaches the PDF verbatim.
	if text := norm(strings.Join(pdfPages(t, render(t, data, Options{Format: FormatPDF})), "\n")); !strings.Contains(text, evil) {
		t.Errorf("PDF text lacks %q", evil)
	}
}

func TestQRCode(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(samplesDir(t), "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	link := VerificationURL("test", "6891152920", time.Date(2025, 11, 13, 0, 0, 0, 0, time.UTC), sum[:])
	const ksefNo = "6891152920-20251113-0100A0E87267-5B"
	tests := []struct {
		name      string
		opts      Options
		label     string
		wantLink  string
		noOffline bool
	}{
		{"offline without number", Options{Offline: true}, "OFFLINE", link, false},
		{"number unknown", Options{}, "OFFLINE", link, false},
		{"offline sent", Options{Offline: true, KsefNumber: ksefNo}, ksefNo, link, true},
		{"online", Options{KsefNumber: ksefNo}, ksefNo, link, true},
		{"demo", Options{Environment: "demo"}, "OFFLINE", strings.Replace(link, "qr-test", "qr-demo", 1), false},
		{"given hash", Options{QR: &QRInfo{InvoiceSHA256: []byte{1, 2, 3}}}, "OFFLINE", "https://qr-test.ksef.mf.gov.pl/invoice/6891152920/13-11-2025/AQID", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format = FormatHTML
			page := string(render(t, data, tt.opts))
			if !strings.Contains(page, `href="`+tt.wantLink+`"`) {
				t.Errorf("HTML lacks link %s", tt.wantLink)
			}
			if !strings.Contains(page, "<figcaption>"+tt.label+"</figcaption>") {
				t.Errorf("QR label is not %q", tt.label)
			}
			if !strings.Contains(page, "<svg") {
				t.Error("no QR drawing")
			}
			tt.opts.Format = FormatPDF
			text := norm(strings.Join(pdfPages(t, render(t, data, tt.opts)), "\n"))
			if !strings.Contains(text, tt.label) {
				t.Errorf("PDF lacks QR label %q", tt.label)
			}
			if tt.noOffline && strings.Contains(text, "OFFLINE") {
				t.Error("PDF says OFFLINE although the KSeF number is known")
			}
			if tt.opts.Offline && !strings.Contains(text, "trybie offline") {
				t.Error("PDF lacks the offline notice")
			}
		})
	}
	t.Run("KOD II", func(t *testing.T) {
		cert := "https://qr-test.ksef.mf.gov.pl/certificate/Nip/6891152920/6891152920/01F20A5D352AE590/abc/sig"
		page := string(render(t, data, Options{Format: FormatHTML, Offline: true, QR: &QRInfo{CertificateURL: cert}}))
		if !strings.Contains(page, "<figcaption>CERTYFIKAT</figcaption>") || !strings.Contains(page, cert) {
			t.Error("KOD II missing")
		}
	})
}

func TestVerificationURL(t *testing.T) {
	// The example of kody-qr.md.
	hash, err := base64.RawURLEncoding.DecodeString("UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	const path = "/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
	tests := []struct{ env, want string }{
		{"test", "https://qr-test.ksef.mf.gov.pl" + path},
		{"", "https://qr-test.ksef.mf.gov.pl" + path},
		{"TE", "https://qr-test.ksef.mf.gov.pl" + path},
		{"demo", "https://qr-demo.ksef.mf.gov.pl" + path},
		{"prod", "https://qr.ksef.mf.gov.pl" + path},
		{"http://127.0.0.1:8080/qr/", "http://127.0.0.1:8080/qr" + path},
	}
	for _, tt := range tests {
		if got := VerificationURL(tt.env, "1111111111", date, hash); got != tt.want {
			t.Errorf("VerificationURL(%q) = %s, want %s", tt.env, got, tt.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join(samplesDir(t), "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	invalidDir := filepath.Join(samplesDir(t), "..", "invalid")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(invalidDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		data []byte
		opts Options
		want error
	}{
		{"empty", context.Background(), read("empty.xml"), Options{}, ErrInvalidInvoice},
		{"truncated", context.Background(), read("truncated-not-well-formed.xml"), Options{}, ErrInvalidInvoice},
		{"xxe", context.Background(), read("xxe-external-entity.xml"), Options{Format: FormatHTML}, ErrInvalidInvoice},
		{"fa2", context.Background(), read("fa2-namespace.xml"), Options{}, ErrInvalidInvoice},
		{"format", context.Background(), sample, Options{Format: "docx"}, ErrUnsupported},
		{"language", context.Background(), sample, Options{Language: "de"}, ErrUnsupported},
		{"type", context.Background(), bytes.Replace(sample, []byte("<RodzajFaktury>VAT<"), []byte("<RodzajFaktury>XYZ<"), 1), Options{}, ErrUnsupported},
		{"canceled", canceled, sample, Options{}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := testRenderer(t).Render(tt.ctx, &buf, tt.data, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written despite the error", buf.Len())
			}
		})
	}
	t.Run("parse error is wrapped", func(t *testing.T) {
		err := testRenderer(t).Render(context.Background(), new(bytes.Buffer), read("empty.xml"), Options{})
		var ve *fa3.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("err = %v, want it to wrap *fa3.ValidationError", err)
		}
	})
}

func TestFontBytesUntouched(t *testing.T) {
	before := sha256.Sum256(goregular.TTF)
	render(t, manyLines(3), Options{Format: FormatPDF})
	if sha256.Sum256(goregular.TTF) != before {
		t.Fatal("rendering modified the shared font bytes")
	}
}

func TestFormatDecimal(t *testing.T) {
	tests := []struct {
		in       string
		lang     Language
		min      int
		want     string
		wantSame bool
	}{
		{"4001.49", LangPL, 2, "4" + nbsp + "001,49", false},
		{"4001.49", LangEN, 2, "4,001.49", false},
		{"4001.49", LangPLEN, 2, "4" + nbsp + "001,49", false},
		{"-2415.89", LangPL, 2, "-2" + nbsp + "415,89", false},
		{" 0.00", LangEN, 2, "0.00", false},
		{"-0.00", LangEN, 2, "0.00", false},
		{"100", LangEN, 2, "100.00", false},
		{"81.3", LangPL, 2, "81,30", false},
		{"0.04415000", LangEN, 2, "0.04415", false},
		{"1234567.5", LangEN, 0, "1,234,567.5", false},
		{"8.0", LangPL, 0, "8", false},
		{"45181.000", LangPL, 0, "45" + nbsp + "181", false},
		{"007", LangEN, 0, "7", false},
		{"", LangPL, 2, "", false},
		{"abc", LangPL, 2, "abc", false},
		{"1.2.3", LangPL, 2, "1.2.3", false},
	}
	for _, tt := range tests {
		if got := tt.lang.formatDecimal(tt.in, tt.min); got != tt.want {
			t.Errorf("formatDecimal(%q, %s, %d) = %q, want %q", tt.in, tt.lang, tt.min, got, tt.want)
		}
	}
}

func TestRateAndDates(t *testing.T) {
	rates := map[string]string{"23": "23%", "8": "8%", "zw": "zw", "np I": "np I", "np II": "np II", "oo": "oo", "0 KR": "0% KR", "0 WDT": "0% WDT", "0 EX": "0% EX", "": ""}
	for in, want := range rates {
		if got := rate(in); got != want {
			t.Errorf("rate(%q) = %q, want %q", in, got, want)
		}
	}
	if got := LangPL.date("2026-02-28"); got != "28.02.2026" {
		t.Errorf("pl date = %q", got)
	}
	if got := LangEN.date("2026-02-28"); got != "2026-02-28" {
		t.Errorf("en date = %q", got)
	}
	if got, ok := sumDecimals("12948.01", "2978.04"); !ok || got != "15926.05" {
		t.Errorf("sumDecimals = %q, %v", got, ok)
	}
	if got := groupAccount("12345678901234567890123456"); got != "12 3456 7890 1234 5678 9012 3456" {
		t.Errorf("groupAccount = %q", got)
	}
}

// TestLabelsComplete checks that every label and code-list entry in
// i18n.go has both languages, so pl_en never shows half a label.
func TestLabelsComplete(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "i18n.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	check := func(lit *ast.CompositeLit) {
		if len(lit.Elts) != 2 {
			t.Errorf("label with %d parts", len(lit.Elts))
			return
		}
		for _, e := range lit.Elts {
			if b, ok := e.(*ast.BasicLit); !ok || b.Value == `""` {
				t.Errorf("label %v has an empty or non-literal part", lit.Elts)
			}
		}
	}
	n := 0
	var decls []ast.Decl
	for _, d := range f.Decls {
		if _, ok := d.(*ast.GenDecl); ok { // the tables, not code building labels
			decls = append(decls, d)
		}
	}
	f.Decls = decls
	ast.Inspect(f, func(node ast.Node) bool {
		lit, ok := node.(*ast.CompositeLit)
		if !ok {
			return true
		}
		switch typ := lit.Type.(type) {
		case *ast.Ident:
			if typ.Name == "text" {
				check(lit)
				n++
			}
		case *ast.MapType:
			if v, ok := typ.Value.(*ast.Ident); ok && v.Name == "text" {
				for _, e := range lit.Elts {
					check(e.(*ast.KeyValueExpr).Value.(*ast.CompositeLit))
					n++
				}
				return false
			}
		}
		return true
	})
	if n < 150 {
		t.Errorf("found only %d labels", n)
	}
}
