package fa3

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// sameAsStd checks the decoding contract on data: whatever fastDecode
// accepts, decodeStd (encoding/xml, the reference) accepts with a deeply
// equal model; and decode, the fast path with its fallback, returns exactly
// what decodeStd returns, model or error. It reports whether the fast path
// accepted data.
func sameAsStd(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	want, wantErr := decodeStd(data)
	got, ok := fastDecode(data)
	if ok {
		if wantErr != nil {
			t.Fatalf("fastDecode accepted what encoding/xml refuses (%v):\n%q", wantErr, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fastDecode model differs from encoding/xml's:\n got %+v\nwant %+v\ninput %q", got, want, data)
		}
	}
	all, allErr := decode(data)
	if !reflect.DeepEqual(all, want) || !reflect.DeepEqual(allErr, wantErr) {
		t.Fatalf("decode = %+v, %v; encoding/xml gives %+v, %v\ninput %q", all, allErr, want, wantErr, data)
	}
	return ok
}

// generatedInvoices returns Generate's output over invoice types, buyers,
// payments, currencies and sizes.
func generatedInvoices(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	types := []string{TypeVAT, TypeKOR, TypeZAL, TypeROZ, TypeUPR, TypeKORZAL, TypeKORROZ}
	for i, typ := range types {
		req := baseRequest()
		req.Type = typ
		req.Number = fmt.Sprintf("FV/%d/<&>\"'", i)
		if typ == TypeKOR || typ == TypeKORZAL || typ == TypeKORROZ {
			req.Correction = &Correction{IssueDate: day("2026-02-01"), Number: "FV/2026/02/007", Reason: "rabat\r\nna linii 2", KSeFNumber: "5265877635-20250826-0100001AF629-AF"}
		}
		opts := []GenerateOption{fixedClock}
		if i%2 == 1 {
			req.Currency = "EUR"
			req.Buyer.NIP = ""
			req.Buyer.EUVatID = "DE123456789"
			req.Buyer.Address.CountryCode = "DE"
			opts = append(opts, WithExchangeRate("4.2618"))
		}
		if i%3 == 0 {
			req.Payment = &Payment{Method: 6, DueDate: day("2026-03-15"), BankAccount: "PL61 1090 1014 0000 0712 1981 2874"}
		}
		data, err := Generate(req, opts...)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out[string(typ)] = data
	}
	data, err := Generate(bigRequest(200), fixedClock)
	if err != nil {
		t.Fatal(err)
	}
	out["200 lines"] = data
	return out
}

func TestFastDecodeMatchesEncodingXMLOnSamples(t *testing.T) {
	for _, s := range samples(t, "valid") {
		t.Run("valid/"+s.name, func(t *testing.T) {
			if !sameAsStd(t, s.data) {
				t.Error("the fast path fell back on a valid sample")
			}
		})
	}
	for _, s := range samples(t, "invalid") {
		t.Run("invalid/"+s.name, func(t *testing.T) { sameAsStd(t, s.data) })
	}
	for name, data := range generatedInvoices(t) {
		t.Run("generated/"+name, func(t *testing.T) {
			if !sameAsStd(t, data) {
				t.Error("the fast path fell back on a generated invoice")
			}
		})
	}
}

// TestFastDecodeMatchesEncodingXMLOnEdges covers the XML that the samples do
// not: references, line ends, CDATA, comments and processing instructions
// inside values, repeated and unknown elements, prefixes, attributes, and
// the errors. fast says whether the fast path is expected to take the input
// (false: it must leave it to encoding/xml).
func TestFastDecodeMatchesEncodingXMLOnEdges(t *testing.T) {
	const ns = `xmlns="` + Namespace + `"`
	doc := func(body string) string {
		return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Faktura " + ns + ">" + body + "</Faktura>\n"
	}
	tests := []struct {
		name string
		in   string
		fast bool
	}{
		{"minimal", doc(""), true},
		{"empty root", `<Faktura ` + ns + `/>`, true},
		{"no declaration", `<Faktura ` + ns + `><Fa><P_2>1</P_2></Fa></Faktura>`, true},
		{"bom", "\xef\xbb\xbf" + doc("<Fa><P_2>1</P_2></Fa>"), true},
		{"predefined entities", doc(`<Fa><P_2>&lt;A&amp;B&gt; &quot;x&quot; &apos;y&apos;</P_2></Fa>`), true},
		{"numeric references", doc(`<Fa><P_2>&#65;&#x105;&#x1F600;&#xD800;&#0000066;</P_2></Fa>`), true},
		{"line ends", doc("<Fa><P_2>a\r\nb\rc\n\r\r\nd\r</P_2></Fa>"), true},
		{"cr before entity", doc("<Fa><P_2>a\r&amp;\nb</P_2></Fa>"), true},
		{"cdata", doc("<Fa><P_2>a<![CDATA[<b>&amp;\r\n]]]]>c</P_2></Fa>"), true},
		{"empty cdata", doc("<Fa><P_2><![CDATA[]]></P_2></Fa>"), true},
		{"comment and pi inside a value", doc(`<Fa><P_2>FV<!-- x -->/1<?pi data?>/2</P_2></Fa>`), true},
		{"child element inside a value is skipped", doc(`<Fa><P_2>FV<b>bold<i>x</i></b>/1</P_2></Fa>`), true},
		{"text inside a struct is ignored", doc(`<Fa>stray<P_2>1</P_2>text</Fa>`), true},
		{"unknown elements", doc(`<Nieznany a="1"><X><Y/></X>t</Nieznany><Fa><Foo/><P_2>1</P_2></Fa>`), true},
		{"repeated leaf: last wins", doc(`<Fa><P_2>1</P_2><P_2>2</P_2></Fa>`), true},
		{"repeated leaf, last empty", doc(`<Fa><P_2>1</P_2><P_2/></Fa>`), true},
		{"repeated struct merges", doc(`<Naglowek><SystemInfo>a</SystemInfo></Naglowek><Naglowek><WariantFormularza>3</WariantFormularza></Naglowek>`), true},
		{"repeated pointer struct merges", doc(`<Fa><Platnosc><Zaplacono>1</Zaplacono></Platnosc><Platnosc><DataZaplaty>2026-01-01</DataZaplaty></Platnosc></Fa>`), true},
		{"slices", doc(`<Fa><WZ>a</WZ><WZ/><WZ>c</WZ><FaWiersz><NrWierszaFa>1</NrWierszaFa></FaWiersz><FaWiersz/></Fa>`), true},
		{"long lists with mixed prefixes", doc("<Fa>" + strings.Repeat("<WZ>a</WZ><p:WZ>b</p:WZ><FaWiersz/>", 40) + "</Fa>"), true},
		{"empty pointer struct", doc(`<Stopka/><Zalacznik></Zalacznik>`), true},
		{"attributes and chardata", doc(`<Naglowek><KodFormularza kodSystemowy="FA (3)" wersjaSchemy='1-0E'>FA</KodFormularza></Naglowek>`), true},
		{"attribute references and line ends", doc("<Naglowek><KodFormularza kodSystemowy=\"a&amp;b&#x20;\r\n\tc]]>\" p:wersjaSchemy = 'x\"' >F<!---->A<x>no</x><![CDATA[!]]></KodFormularza></Naglowek>"), true},
		{"duplicate attribute: last wins", doc(`<Naglowek><KodFormularza kodSystemowy="a" kodSystemowy="b"/></Naglowek>`), true},
		{"attributes without spaces", doc(`<Naglowek><KodFormularza kodSystemowy="a"wersjaSchemy="b"/></Naglowek>`), true},
		{"xmlns-prefixed attribute fills the field", doc(`<Naglowek><KodFormularza xmlns:kodSystemowy="a"/></Naglowek>`), true},
		{"colon-led attribute does not", doc(`<Naglowek><KodFormularza :kodSystemowy="a"/></Naglowek>`), true},
		{"kol attribute", doc(`<Zalacznik><BlokDanych><Tabela><TNaglowek><Kol Typ="txt"><NKom>A</NKom></Kol></TNaglowek></Tabela></BlokDanych></Zalacznik>`), true},
		{"prefixed elements", `<f:Faktura xmlns:f="` + Namespace + `"><f:Fa><f:P_2>1</f:P_2><g:P_1>2026-01-01</g:P_1></f:Fa></f:Faktura>`, true},
		{"prefixed root, last declaration wins", `<f:Faktura xmlns:f="x" xmlns:f="` + Namespace + `"/>`, true},
		{"colon-led names are whole", doc(`<Fa><:P_2>1</:P_2></Fa>`), true},
		{"whitespace in tags", doc("<Fa\n><P_2\t>1</P_2\r\n></Fa >"), true},
		{"misc around the root", "<!-- a --><?pi x?>\n" + doc("") + "<!--b-->\n<?pi?>  ", true},
		{"non-ascii text", doc(`<Podmiot1><DaneIdentyfikacyjne><Nazwa>Zażółć gęślą jaźń €</Nazwa></DaneIdentyfikacyjne></Podmiot1>`), true},
		{"0x7f and U+FFFD", doc("<Fa><P_2>\x7f\xef\xbf\xbd</P_2></Fa>"), true},
		{"comment content is not checked", doc("<!-- \x01 \xff -->"), true},
		{"xml declaration version 1.1", `<?xml version="1.1"?>` + doc(""), false},
		{"xml declaration encoding", `<?xml version="1.0" encoding="latin2"?><Faktura ` + ns + `/>`, false},
		{"xml declaration lower-case utf-8", `<?xml version='1.0' encoding='utf-8'?><Faktura ` + ns + `/>`, true},

		// Left to encoding/xml: legal but rare.
		{"non-ascii element name", doc(`<Fa><Zażółć>1</Zażółć><P_2>1</P_2></Fa>`), false},
		{"directive inside an element", doc(`<Fa><!ELEMENT x ANY><P_2>1</P_2></Fa>`), false},
		{"nbsp before the root", "\u00a0" + doc(""), false},

		// Errors, all left to encoding/xml.
		{"wrong root", `<Faktur ` + ns + `/>`, false},
		{"fa2 root", `<Faktura xmlns="` + FA2Namespace + `"/>`, false},
		{"no namespace", `<Faktura/>`, false},
		{"undeclared prefix", `<f:Faktura/>`, false},
		{"mismatched end", doc(`<Fa><P_2>1</P_1></Fa>`), false},
		{"mismatched prefix", `<f:Faktura xmlns:f="` + Namespace + `"></g:Faktura>`, false},
		{"unclosed", doc(`<Fa><P_2>1</P_2>`), false},
		{"truncated", doc(`<Fa><P_2>1`)[:60], false},
		{"unknown entity", doc(`<Fa><P_2>&nbsp;</P_2></Fa>`), false},
		{"entity without semicolon", doc(`<Fa><P_2>&amp</P_2></Fa>`), false},
		{"capital X reference", doc(`<Fa><P_2>&#X41;</P_2></Fa>`), false},
		{"reference to a control character", doc(`<Fa><P_2>&#1;</P_2></Fa>`), false},
		{"reference beyond unicode", doc(`<Fa><P_2>&#x110000;</P_2></Fa>`), false},
		{"empty reference", doc(`<Fa><P_2>&#;</P_2></Fa>`), false},
		{"cdata end in text", doc(`<Fa><P_2>a]]>b</P_2></Fa>`), false},
		{"control character", doc("<Fa><P_2>a\x01</P_2></Fa>"), false},
		{"invalid utf-8", doc("<Fa><P_2>a\xff</P_2></Fa>"), false},
		{"encoded surrogate", doc("<Fa><P_2>\xed\xa0\x80</P_2></Fa>"), false},
		{"U+FFFE", doc("<Fa><P_2>\xef\xbf\xbe</P_2></Fa>"), false},
		{"lt in attribute", doc(`<Naglowek><KodFormularza kodSystemowy="<"/></Naglowek>`), false},
		{"unquoted attribute", doc(`<Naglowek><KodFormularza kodSystemowy=a/></Naglowek>`), false},
		{"attribute without value", doc(`<Naglowek><KodFormularza kodSystemowy/></Naglowek>`), false},
		{"two colons", doc(`<Fa><a:b:P_2>1</a:b:P_2></Fa>`), false},
		{"double hyphen in comment", doc(`<!-- a -- b -->`), false},
		{"unterminated comment", doc(`<Fa><!-- a </Fa>`), false},
		{"bad cdata opener", doc(`<Fa><![CDAT[x]]></Fa>`), false},
		{"text after the root", doc("") + "x", false},
		{"second root", doc("") + `<Faktura ` + ns + `/>`, false},
		{"end tag after the root", doc("") + `</Faktura>`, false},
		{"text before the root", "x" + doc(""), false},
		{"name starting with a digit", doc(`<Fa><1P/></Fa>`), false},
		{"space after lt", doc(`<Fa>< P_2>1</P_2></Fa>`), false},
		{"slash without gt", doc(`<Fa><P_2/ ></Fa>`), false},
		{"garbage in end tag", doc(`<Fa><P_2>1</P_2 x></Fa>`), false},
		{"empty pi target", doc(`<? x?>`), false},
		{"unterminated pi", doc(`<Fa><?x </Fa>`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fast := sameAsStd(t, []byte(tt.in)); fast != tt.fast {
				t.Errorf("fast path took the input: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// FuzzFastDecode compares the fast path with encoding/xml on arbitrary
// input, seeded with the samples, generated invoices and the edge cases'
// building blocks.
func FuzzFastDecode(f *testing.F) {
	for _, kind := range []string{"valid", "invalid"} {
		for _, s := range samples(f, kind) {
			f.Add(s.data)
		}
	}
	for _, data := range generatedInvoices(f) {
		if len(data) < 64<<10 {
			f.Add(data)
		}
	}
	f.Add([]byte(`<Faktura xmlns="` + Namespace + `"><Naglowek><KodFormularza kodSystemowy="a&amp;" p:wersjaSchemy='b'>F<!--c-->A<![CDATA[x]]></KodFormularza></Naglowek><Fa><P_2>&#x105;&lt;\r\n</P_2><X><Y/></X><WZ/><FaWiersz/></Fa></Faktura>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if precheck(data) != nil {
			return // decode only ever sees prechecked input
		}
		sameAsStd(t, data)
	})
}

func TestModelInfoCoversTheModel(t *testing.T) {
	// Every field of every model struct is reachable from Invoice and known
	// to the fast decoder, so a field added to model.go without a kind the
	// decoder supports fails at init, and one the decoder ignores fails here.
	var walk func(mi *modelInfo, path string)
	seen := map[reflect.Type]bool{}
	walk = func(mi *modelInfo, path string) {
		if seen[mi.typ] {
			return
		}
		seen[mi.typ] = true
		known := map[int]bool{mi.chardata: mi.chardata >= 0}
		for _, i := range mi.attrs {
			known[i] = true
		}
		for _, f := range mi.elems {
			known[f.index] = true
			if f.elem != nil {
				walk(f.elem, path+"/"+mi.typ.Field(f.index).Name)
			}
		}
		for i := range mi.typ.NumField() {
			if name := mi.typ.Field(i).Name; !known[i] && name != "XMLName" {
				t.Errorf("%s/%s is not decoded", path, name)
			}
		}
	}
	walk(invoiceInfo, "Faktura")
	if !seen[reflect.TypeFor[Wiersz]()] || !seen[reflect.TypeFor[KodFormularza]()] {
		t.Errorf("the walk missed model types: reached %d", len(seen))
	}
}

// declarationRef is how precheck found declarations before declaration.
func declarationRef(data []byte) int {
	for _, decl := range [][]byte{[]byte("<!DOCTYPE"), []byte("<!ENTITY")} {
		if i := bytes.Index(data, decl); i >= 0 {
			return i
		}
	}
	return -1
}

func FuzzDeclaration(f *testing.F) {
	for _, s := range []string{"", "!", "<!", "<!DOCTYPE", "x<!ENTITY a<!DOCTYPE", "<!ENTITY<!DOCTYPE", "!<!-- --><!ENTITY", "<!DOCTYP", "<<!!DOCTYPE", "a!b<!ENTIT<!ENTITY"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := declaration(data), declarationRef(data); got != want {
			t.Fatalf("declaration(%q) = %d, want %d", data, got, want)
		}
	})
}
