package visualize

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the directory holding go.mod; shared/ lies beside it.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func samplesDir(t testing.TB) string {
	return filepath.Join(repoRoot(t), "..", "shared", "ksef", "samples", "valid")
}

var (
	rendererOnce sync.Once
	rendererVal  *Renderer
	rendererErr  error
)

// testRenderer is one Renderer for the whole package's tests, which also
// exercises sharing it.
func testRenderer(t testing.TB) *Renderer {
	t.Helper()
	rendererOnce.Do(func() { rendererVal, rendererErr = NewRenderer() })
	if rendererErr != nil {
		t.Fatal(rendererErr)
	}
	return rendererVal
}

func render(t testing.TB, data []byte, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := testRenderer(t).Render(context.Background(), &buf, data, opts); err != nil {
		t.Fatalf("Render(%s, %s): %v", opts.Format, opts.Language, err)
	}
	return buf.Bytes()
}

// pdfPages extracts the text of each page with pdftotext -layout. Without
// pdftotext the test fails in CI and is skipped elsewhere.
func pdfPages(t testing.TB, pdf []byte) []string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext not installed (apt-get install poppler-utils)")
		}
		t.Skip("pdftotext not installed (apt-get install poppler-utils)")
	}
	path := filepath.Join(t.TempDir(), "invoice.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pdftotext: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("pdftotext: %v", err)
	}
	pages := strings.Split(string(out), "\f")
	if n := len(pages); n > 0 && strings.TrimSpace(pages[n-1]) == "" {
		pages = pages[:n-1]
	}
	return pages
}

// norm collapses white space (pdftotext -layout pads columns with spaces
// and prints a no-break space as a space) so that phrases can be searched.
func norm(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, nbsp, " ")), " ")
}

var tags = regexp.MustCompile(`<[^>]*>`)

// htmlText is the visible text of a page: tags dropped, entities decoded,
// white space collapsed.
func htmlText(page []byte) string {
	return norm(html.UnescapeString(tags.ReplaceAllString(string(page), " ")))
}

// line is one FaWiersz of a generated invoice.
type line struct{ name, unit, qty, price, net, rate string }

// invoiceXML builds a minimal FA(3) invoice with the given lines, the names
// and the totals P_13_1/P_14_1/P_15 passed in. Text is XML-escaped.
func invoiceXML(number, sellerName, buyerName string, lines []line, net, vat, total string) []byte {
	esc := func(s string) string {
		var b strings.Builder
		if err := xml.EscapeText(&b, []byte(s)); err != nil {
			panic(err)
		}
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Faktura xmlns="http://crd.gov.pl/wzor/2025/06/25/13775/">
<Naglowek><KodFormularza kodSystemowy="FA (3)" wersjaSchemy="1-0E">FA</KodFormularza><WariantFormularza>3</WariantFormularza><DataWytworzeniaFa>2026-02-01T10:00:00Z</DataWytworzeniaFa><SystemInfo>test</SystemInfo></Naglowek>
<Podmiot1><DaneIdentyfikacyjne><NIP>1111111111</NIP><Nazwa>%s</Nazwa></DaneIdentyfikacyjne><Adres><KodKraju>PL</KodKraju><AdresL1>ul. Źródlana 5</AdresL1><AdresL2>00-950 Łódź</AdresL2></Adres></Podmiot1>
<Podmiot2><DaneIdentyfikacyjne><NIP>2222222222</NIP><Nazwa>%s</Nazwa></DaneIdentyfikacyjne><Adres><KodKraju>PL</KodKraju><AdresL1>ul. Śląska 1</AdresL1></Adres><JST>2</JST><GV>2</GV></Podmiot2>
<Fa><KodWaluty>PLN</KodWaluty><P_1>2026-02-01</P_1><P_2>%s</P_2><P_6>2026-02-01</P_6><P_13_1>%s</P_13_1><P_14_1>%s</P_14_1><P_15>%s</P_15>
<Adnotacje><P_16>2</P_16><P_17>2</P_17><P_18>2</P_18><P_18A>2</P_18A><Zwolnienie><P_19N>1</P_19N></Zwolnienie><NoweSrodkiTransportu><P_22N>1</P_22N></NoweSrodkiTransportu><P_23>2</P_23><PMarzy><P_PMarzyN>1</P_PMarzyN></PMarzy></Adnotacje>
<RodzajFaktury>VAT</RodzajFaktury>
`, esc(sellerName), esc(buyerName), esc(number), net, vat, total)
	for i, l := range lines {
		fmt.Fprintf(&b, "<FaWiersz><NrWierszaFa>%d</NrWierszaFa><P_7>%s</P_7><P_8A>%s</P_8A><P_8B>%s</P_8B><P_9A>%s</P_9A><P_11>%s</P_11><P_12>%s</P_12></FaWiersz>\n",
			i+1, esc(l.name), esc(l.unit), l.qty, l.price, l.net, l.rate)
	}
	b.WriteString(`<Platnosc><TerminPlatnosci><Termin>2026-02-15</Termin></TerminPlatnosci><FormaPlatnosci>6</FormaPlatnosci><RachunekBankowy><NrRB>12345678901234567890123456</NrRB><NazwaBanku>Bank Polski S.A.</NazwaBanku></RachunekBankowy></Platnosc>
</Fa>
<Stopka><Informacje><StopkaFaktury>Kapitał zakładowy 5 000 zł</StopkaFaktury></Informacje></Stopka>
</Faktura>
`)
	return []byte(b.String())
}

// manyLines is an invoice of n lines of 10.00 net at 23%.
func manyLines(n int) []byte {
	lines := make([]line, n)
	for i := range lines {
		lines[i] = line{name: fmt.Sprintf("Pozycja %04d: usługa serwisowa z dojazdem", i+1), unit: "szt.", qty: "1", price: "10.00", net: "10.00", rate: "23"}
	}
	net := fmt.Sprintf("%d.00", 10*n)
	vat := fmt.Sprintf("%d.%02d", 23*n/10, 23*n%10*10)
	total := fmt.Sprintf("%d.%02d", 123*n/10, 123*n%10*10)
	return invoiceXML("FV/2026/02/0001", "Sprzedawca Sp. z o.o.", "Nabywca S.A.", lines, net, vat, total)
}
