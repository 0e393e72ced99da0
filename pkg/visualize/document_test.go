package visualize

import (
	"strings"
	"testing"
)

// edit applies old->new replacements to a generated invoice, failing if one
// does not match (so a changed helper cannot silently void a test).
func edit(t *testing.T, data []byte, pairs ...string) []byte {
	t.Helper()
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the invoice", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return []byte(s)
}

// bothTexts renders data to PDF and HTML and returns their normalised text.
func bothTexts(t *testing.T, data []byte, lang Language) map[string]string {
	t.Helper()
	return map[string]string{
		"PDF":  norm(strings.Join(pdfPages(t, render(t, data, Options{Format: FormatPDF, Language: lang})), "\n")),
		"HTML": htmlText(render(t, data, Options{Format: FormatHTML, Language: lang})),
	}
}

func assertContains(t *testing.T, texts map[string]string, want ...string) {
	t.Helper()
	for name, text := range texts {
		for _, w := range want {
			if !strings.Contains(text, norm(w)) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
}

func TestInvoiceTypes(t *testing.T) {
	base := invoiceXML("T/1", "S", "B", []line{{name: "x", unit: "szt", qty: "1", price: "1.00", net: "1.00", rate: "23"}}, "1.00", "0.23", "1.23")
	for typ, title := range invoiceTitles {
		t.Run(typ, func(t *testing.T) {
			data := edit(t, base, "<RodzajFaktury>VAT</RodzajFaktury>", "<RodzajFaktury>"+typ+"</RodzajFaktury>")
			for _, lang := range languages {
				texts := bothTexts(t, data, lang)
				assertContains(t, texts, lang.tr(title))
			}
		})
	}
}

func TestCorrectionWithStateBefore(t *testing.T) {
	const corrected = "1111111111-20260115-0100A0E87267-7C"
	base := invoiceXML("KOR/1", "S", "B", []line{
		{name: "Towar przed korektą", unit: "szt", qty: "2", price: "10.00", net: "20.00", rate: "23"},
		{name: "Towar po korekcie", unit: "szt", qty: "1", price: "10.00", net: "10.00", rate: "23"},
	}, "-10.00", "-2.30", "-12.30")
	data := edit(t, base,
		"<RodzajFaktury>VAT</RodzajFaktury>",
		"<RodzajFaktury>KOR</RodzajFaktury><PrzyczynaKorekty>Zwrot części towaru</PrzyczynaKorekty><TypKorekty>2</TypKorekty>"+
			"<DaneFaKorygowanej><DataWystFaKorygowanej>2026-01-15</DataWystFaKorygowanej><NrFaKorygowanej>FV/2026/01/7</NrFaKorygowanej>"+
			"<NrKSeF>1</NrKSeF><NrKSeFFaKorygowanej>"+corrected+"</NrKSeFFaKorygowanej></DaneFaKorygowanej>",
		"<P_12>23</P_12></FaWiersz>", "<P_12>23</P_12><StanPrzed>1</StanPrzed></FaWiersz>")
	texts := bothTexts(t, data, LangPL)
	assertContains(t, texts,
		"Faktura korygująca", "Przyczyna korekty: Zwrot części towaru", "FV/2026/01/7", "15.01.2026", corrected,
		"w dacie wystawienia faktury korygującej", "Towar przed korektą", "(stan przed korektą)", "Towar po korekcie",
		LangPL.amount("-12.30"))
	if n := strings.Count(texts["HTML"], "(stan przed korektą)"); n != 1 {
		t.Errorf("%d lines marked as before correction, want 1", n)
	}
	if !strings.Contains(string(render(t, data, Options{Format: FormatHTML})), `<tr class="muted">`) {
		t.Error("the state-before line is not set apart in HTML")
	}
}

func TestRatesAnnotationsAndParties(t *testing.T) {
	rates := []string{"23", "8", "5", "0 KR", "0 WDT", "0 EX", "zw", "np I", "np II", "oo"}
	var lines []line
	for _, r := range rates {
		lines = append(lines, line{name: "Usługa " + r, unit: "h", qty: "1", price: "100.00", net: "100.00", rate: r})
	}
	base := invoiceXML("R/1", "S", "B", lines, "100.00", "23.00", "1136.00")
	data := edit(t, base,
		"<P_15>", "<P_13_2>100.00</P_13_2><P_14_2>8.00</P_14_2><P_13_3>100.00</P_13_3><P_14_3>5.00</P_14_3>"+
			"<P_13_6_1>100.00</P_13_6_1><P_13_6_2>100.00</P_13_6_2><P_13_6_3>100.00</P_13_6_3><P_13_7>100.00</P_13_7>"+
			"<P_13_8>100.00</P_13_8><P_13_9>100.00</P_13_9><P_13_10>100.00</P_13_10><P_15>",
		"<P_16>2</P_16><P_17>2</P_17><P_18>2</P_18><P_18A>2</P_18A><Zwolnienie><P_19N>1</P_19N></Zwolnienie>",
		"<P_16>1</P_16><P_17>1</P_17><P_18>1</P_18><P_18A>1</P_18A><Zwolnienie><P_19>1</P_19><P_19A>art. 43 ust. 1 pkt 37 ustawy</P_19A></Zwolnienie>",
		"<PMarzy><P_PMarzyN>1</P_PMarzyN></PMarzy>", "<PMarzy><P_PMarzy>1</P_PMarzy><P_PMarzy_3_1>1</P_PMarzy_3_1></PMarzy>",
		"<NIP>2222222222</NIP>", "<KodUE>DE</KodUE><NrVatUE>123456789</NrVatUE>",
		"</Podmiot2>", "</Podmiot2><Podmiot3><DaneIdentyfikacyjne><KodKraju>US</KodKraju><NrID>99-999</NrID><Nazwa>Payer Inc.</Nazwa></DaneIdentyfikacyjne><Rola>6</Rola></Podmiot3>"+
			"<Podmiot3><DaneIdentyfikacyjne><BrakID>1</BrakID><Nazwa>Jan Kowalski</Nazwa></DaneIdentyfikacyjne><Rola>2</Rola></Podmiot3>",
	)
	texts := bothTexts(t, data, LangPL)
	assertContains(t, texts,
		// line rates and the summary groups
		"23%", "8%", "5%", "0% KR", "0% WDT", "0% EX", " zw ", "np I", "np II", " oo ",
		LangPL.amount("108.00"), LangPL.amount("105.00"), LangPL.amount("1136.00"),
		// annotations
		"Metoda kasowa", "Samofakturowanie", "Odwrotne obciążenie", "Mechanizm podzielonej płatności",
		"art. 43 ust. 1 pkt 37 ustawy", "Procedura marży - towary używane",
		// parties
		"Numer VAT UE: DE123456789", "Identyfikator podatkowy: US 99-999", "Dokonujący płatności", "Payer Inc.",
		"Brak identyfikatora podatkowego", "Jan Kowalski", "Odbiorca",
	)
	assertContains(t, bothTexts(t, data, LangEN), "Cash accounting", "Self-billing", "Reverse charge", "Split payment mechanism",
		"EU VAT number: DE123456789", "Payer", "Margin scheme: second-hand goods", LangEN.amount("1136.00"))
}

func TestForeignCurrencyVATInPLN(t *testing.T) {
	base := invoiceXML("EUR/1", "S", "B", []line{{name: "Consulting", unit: "h", qty: "10", price: "100.00", net: "1000.00", rate: "23"}}, "1000.00", "230.00", "1230.00")
	data := edit(t, base, "<KodWaluty>PLN</KodWaluty>", "<KodWaluty>EUR</KodWaluty>", "<P_15>", "<P_14_1W>977.27</P_14_1W><P_15>")
	for _, lang := range []Language{LangPL, LangEN} {
		assertContains(t, bothTexts(t, data, lang), lang.tr(colVATPLN), lang.amount("977.27"), lang.amount("1230.00")+" EUR", lang.trf(lblNetPricesIn, "EUR"))
	}
}
