package fa3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
)

// XSD patterns (implicitly anchored in XSD, explicitly here).
var (
	nipRe        = regexp.MustCompile(`^[1-9]((\d[1-9])|([1-9]\d))\d{7}$`)
	ksefNumberRe = regexp.MustCompile(`^([1-9]((\d[1-9])|([1-9]\d))\d{7}|M\d{9}|[A-Z]{3}\d{7})-(20[2-9][0-9]|2[1-9][0-9]{2}|[3-9][0-9]{3})(0[1-9]|1[0-2])(0[1-9]|[1-2][0-9]|3[0-1])-([0-9A-F]{6})-?([0-9A-F]{6})-([0-9A-F]{2})$`)
	amountRe     = regexp.MustCompile(`^-?([1-9]\d{0,15}|0)(\.\d{1,2})?$`)
	dateRe       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	currencyRe   = regexp.MustCompile(`^[A-Z]{3}$`)
	invTypeRe    = regexp.MustCompile(`^(VAT|KOR|ZAL|ROZ|UPR|KOR_ZAL|KOR_ROZ)$`)
	vatRateRe    = regexp.MustCompile(`^(23|22|8|7|5|4|3|0 KR|0 WDT|0 EX|zw|oo|np I|np II)$`)
)

// leafRules are the value checks the structural fallback applies, by element name.
var leafRules = map[string]struct {
	re   *regexp.Regexp
	what string
}{
	"NIP":                   {nipRe, "a NIP"},
	"NrKSeFFaKorygowanej":   {ksefNumberRe, "a KSeF number"},
	"NrKSeFFaZaliczkowej":   {ksefNumberRe, "a KSeF number"},
	"P_1":                   {dateRe, "a date"},
	"P_6":                   {dateRe, "a date"},
	"DataWystFaKorygowanej": {dateRe, "a date"},
	"Termin":                {dateRe, "a date"},
	"KodWaluty":             {currencyRe, "a currency code"},
	"RodzajFaktury":         {invTypeRe, "an invoice type"},
	"P_12":                  {vatRateRe, "a VAT rate"},
	"P_15":                  {amountRe, "an amount"},
	"P_13_1":                {amountRe, "an amount"},
	"P_13_2":                {amountRe, "an amount"},
	"P_13_3":                {amountRe, "an amount"},
	"P_13_4":                {amountRe, "an amount"},
	"P_13_5":                {amountRe, "an amount"},
	"P_13_6_1":              {amountRe, "an amount"},
	"P_13_6_2":              {amountRe, "an amount"},
	"P_13_6_3":              {amountRe, "an amount"},
	"P_13_7":                {amountRe, "an amount"},
	"P_13_8":                {amountRe, "an amount"},
	"P_13_9":                {amountRe, "an amount"},
	"P_13_10":               {amountRe, "an amount"},
	"P_13_11":               {amountRe, "an amount"},
	"P_14_1":                {amountRe, "an amount"},
	"P_14_2":                {amountRe, "an amount"},
	"P_14_3":                {amountRe, "an amount"},
	"P_14_4":                {amountRe, "an amount"},
	"P_14_5":                {amountRe, "an amount"},
	"P_11":                  {amountRe, "an amount"},
}

// requiredChildren lists, per element path, the children the schema requires.
var requiredChildren = map[string][]string{
	"Faktura":                              {"Naglowek", "Podmiot1", "Podmiot2", "Fa"},
	"Faktura/Naglowek":                     {"KodFormularza", "WariantFormularza", "DataWytworzeniaFa"},
	"Faktura/Podmiot1":                     {"DaneIdentyfikacyjne", "Adres"},
	"Faktura/Podmiot1/DaneIdentyfikacyjne": {"NIP", "Nazwa"},
	"Faktura/Podmiot2":                     {"DaneIdentyfikacyjne", "JST", "GV"},
	"Faktura/Fa":                           {"KodWaluty", "P_1", "P_2", "P_15", "Adnotacje", "RodzajFaktury"},
	"Faktura/Fa/Adnotacje":                 {"P_16", "P_17", "P_18", "P_18A", "Zwolnienie", "NoweSrodkiTransportu", "P_23", "PMarzy"},
	"Faktura/Fa/DaneFaKorygowanej":         {"DataWystFaKorygowanej", "NrFaKorygowanej"},
	"Faktura/Fa/FaWiersz":                  {"NrWierszaFa"},
	"Faktura/Fa/Platnosc/TerminPlatnosci/TerminOpis": {"Ilosc", "Jednostka", "ZdarzeniePoczatkowe"},
}

// complexElements hold only child elements; text in them is an error (e.g.
// an FA(2)-style TerminOpis with a textual description).
var complexElements = map[string]bool{
	"Naglowek": true, "Podmiot1": true, "Podmiot2": true, "Podmiot3": true, "Fa": true,
	"DaneIdentyfikacyjne": true, "Adres": true, "AdresKoresp": true, "DaneKontaktowe": true,
	"Adnotacje": true, "Zwolnienie": true, "NoweSrodkiTransportu": true, "PMarzy": true,
	"DaneFaKorygowanej": true, "FaWiersz": true, "Platnosc": true, "TerminPlatnosci": true,
	"TerminOpis": true, "RachunekBankowy": true, "Rozliczenie": true, "WarunkiTransakcji": true,
	"Zamowienie": true, "ZamowienieWiersz": true, "Stopka": true, "Zalacznik": true,
}

// structuralCheck is the fallback used when no schema is available: it
// checks the required elements, the patterns of identifiers, dates and
// amounts, and that complex elements hold no text. It is far weaker than
// the XSD and exists so that the pipeline still refuses the most common
// defects. data must be well-formed with an FA(3) root.
func structuralCheck(data []byte) *ValidationError {
	type frame struct {
		name     string
		text     bytes.Buffer
		children map[string]bool
	}
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM)))
	d.Strict = true
	var stack []*frame
	path := func() string {
		names := make([]string, len(stack))
		for i, f := range stack {
			names[i] = f.name
		}
		return strings.Join(names, "/")
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return syntaxErr(d, data, err)
		}
		line, _ := d.InputPos()
		switch t := tok.(type) {
		case xml.StartElement:
			if n := len(stack); n > 0 {
				p := stack[n-1]
				if p.children == nil {
					p.children = make(map[string]bool)
				}
				p.children[t.Name.Local] = true
			}
			stack = append(stack, &frame{name: t.Name.Local})
		case xml.CharData:
			if n := len(stack); n > 0 {
				stack[n-1].text.Write(t)
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			p := path()
			text := strings.TrimSpace(f.text.String())
			if complexElements[f.name] && text != "" {
				return verr(KindSchema, line, "element %s: character content is not allowed, child elements are expected", f.name)
			}
			if len(f.children) == 0 {
				if rule, ok := leafRules[f.name]; ok && !rule.re.MatchString(text) {
					return verr(KindSchema, line, "element %s: the value %q is not %s", f.name, text, rule.what)
				}
			}
			for _, c := range requiredChildren[p] {
				if !f.children[c] {
					return verr(KindSchema, line, "element %s: missing child element %s", f.name, c)
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// xmlEscape writes s escaped for use in XML text or attribute values.
func xmlEscape(w io.Writer, s string) error { return xml.EscapeText(w, []byte(s)) }
