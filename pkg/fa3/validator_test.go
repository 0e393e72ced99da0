package fa3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newXSDValidator(t testing.TB, opts ...Option) *Validator {
	t.Helper()
	v, err := NewValidator(schemaDir(t), opts...)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	if !v.SchemaValidated() {
		t.Fatal("validator is in fallback mode")
	}
	return v
}

func newFallbackValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := NewValidator("")
	if err != nil {
		t.Fatalf("NewValidator(\"\"): %v", err)
	}
	if v == nil || v.SchemaValidated() {
		t.Fatal("want a fallback validator")
	}
	return v
}

func TestValidateValidSamples(t *testing.T) {
	modes := map[string]*Validator{"xsd": newXSDValidator(t), "fallback": newFallbackValidator(t)}
	for mode, v := range modes {
		for _, s := range samples(t, "valid") {
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				res, err := v.Validate(context.Background(), s.data)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if res.Version != "v3" || res.SchemaValidated != (mode == "xsd") || res.Invoice == nil {
					t.Fatalf("result = %+v", res)
				}
				if res.Invoice.InvoiceNumber() == "" {
					t.Error("no invoice number")
				}
			})
		}
	}
}

// invalidSamples gives the expected kind of each invalid sample in XSD mode
// and in fallback mode (0: fallback cannot detect it).
var invalidSamples = map[string]struct{ xsd, fallback ErrorKind }{
	"payment-term-as-text.xml":              {KindSchema, KindSchema},
	"corrected-ksef-number-bad-pattern.xml": {KindSchema, KindSchema},
	"fa2-namespace.xml":                     {KindNotFA3, KindNotFA3},
	"missing-invoice-number-p2.xml":         {KindSchema, KindSchema},
	"seller-nip-nine-digits.xml":            {KindSchema, KindSchema},
	"truncated-not-well-formed.xml":         {KindNotWellFormed, KindNotWellFormed},
	"empty.xml":                             {KindEmpty, KindEmpty},
	"xxe-external-entity.xml":               {KindDTD, KindDTD},
	"billion-laughs.xml":                    {KindDTD, KindDTD},
}

func TestValidateInvalidSamples(t *testing.T) {
	modes := map[string]*Validator{"xsd": newXSDValidator(t), "fallback": newFallbackValidator(t)}
	got := samples(t, "invalid")
	if len(got) != len(invalidSamples) {
		t.Errorf("%d invalid samples on disk, %d expected: update the table", len(got), len(invalidSamples))
	}
	for mode, v := range modes {
		for _, s := range got {
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				want, ok := invalidSamples[s.name]
				if !ok {
					t.Fatal("sample missing from table")
				}
				kind := want.xsd
				if mode == "fallback" {
					kind = want.fallback
				}
				res, err := v.Validate(context.Background(), s.data)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Validate = %+v, %v; want *ValidationError", res, err)
				}
				if ve.Kind != kind {
					t.Fatalf("kind = %v, want %v (%v)", ve.Kind, kind, ve)
				}
				if ve.Message == "" {
					t.Fatal("empty message")
				}
				t.Logf("%v", ve)
				if _, err := Parse(s.data); err == nil && kind != KindSchema {
					t.Error("Parse accepted it")
				}
			})
		}
	}
}

func TestXSDErrorsPointAtTheDefect(t *testing.T) {
	v := newXSDValidator(t)
	tests := []struct {
		file, want string
	}{
		{"seller-nip-nine-digits.xml", "NIP"},
		{"missing-invoice-number-p2.xml", "P_2"},
		{"corrected-ksef-number-bad-pattern.xml", "NrKSeFFaKorygowanej"},
		{"payment-term-as-text.xml", "TerminOpis"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readSample(t, "invalid", tt.file)
			_, err := v.Validate(context.Background(), data)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatal(err)
			}
			if !strings.Contains(ve.Message, tt.want) {
				t.Errorf("message %q does not mention %s", ve.Message, tt.want)
			}
			if ve.Line <= 1 {
				t.Errorf("line = %d", ve.Line)
			}
			if !strings.HasPrefix(ve.Error(), "line ") {
				t.Errorf("Error() = %q", ve.Error())
			}
		})
	}
}

func TestXXEContentNeverLeaks(t *testing.T) {
	data := readSample(t, "invalid", "xxe-external-entity.xml")
	secret, err := os.ReadFile("/etc/passwd")
	if err != nil || len(secret) == 0 {
		t.Skip("/etc/passwd unreadable")
	}
	firstLine := string(bytes.SplitN(secret, []byte("\n"), 2)[0])
	for _, v := range []*Validator{newXSDValidator(t), newFallbackValidator(t)} {
		_, err := v.Validate(context.Background(), data)
		if err == nil || strings.Contains(err.Error(), firstLine) || strings.Contains(err.Error(), "root:") {
			t.Fatalf("err = %v", err)
		}
	}
	for _, f := range []func([]byte) error{
		func(b []byte) error { _, err := Parse(b); return err },
		func(b []byte) error { _, err := Canonical(b); return err },
	} {
		if err := f(data); KindOf(err) != KindDTD || strings.Contains(err.Error(), firstLine) {
			t.Fatalf("err = %v", err)
		}
	}
}

func TestBillionLaughsRefusedQuickly(t *testing.T) {
	v := newXSDValidator(t)
	data := readSample(t, "invalid", "billion-laughs.xml")
	start := time.Now()
	_, err := v.Validate(context.Background(), data)
	if KindOf(err) != KindDTD {
		t.Fatalf("err = %v", err)
	}
	// Not a timing assertion, just a report: the refusal is a byte scan.
	t.Logf("refused in %v", time.Since(start))
}

func TestValidateOrder(t *testing.T) {
	v := newXSDValidator(t, WithMaxSize(200))
	big := append([]byte(`<!DOCTYPE x>`), bytes.Repeat([]byte(" "), 300)...)
	tests := []struct {
		name string
		in   []byte
		kind ErrorKind
	}{
		{"too large wins over DTD", big, KindTooLarge},
		{"empty", nil, KindEmpty},
		{"dtd before well-formedness", []byte(`<!DOCTYPE x><a`), KindDTD},
		{"well-formedness before namespace", []byte(`<Faktura xmlns="` + FA2Namespace + `"><a></Faktura>`), KindNotWellFormed},
		{"namespace before schema", []byte(`<Faktura xmlns="` + FA2Namespace + `"/>`), KindNotFA3},
		{"schema", []byte(`<Faktura xmlns="` + Namespace + `"/>`), KindSchema},
		{"invalid utf-8", []byte("<Faktura xmlns=\"" + Namespace + "\">\xff\xfe</Faktura>"), KindNotWellFormed},
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

func TestValidateDefaultSizeLimit(t *testing.T) {
	v := newFallbackValidator(t)
	data := make([]byte, DefaultMaxSize+1)
	if _, err := v.Validate(context.Background(), data); KindOf(err) != KindTooLarge {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateCanceledContext(t *testing.T) {
	v := newFallbackValidator(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Validate(ctx, []byte("<a/>")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewValidatorMissingDir(t *testing.T) {
	v, err := NewValidator(filepath.Join(t.TempDir(), "nope"))
	if err != nil || v == nil || v.SchemaValidated() {
		t.Fatalf("v = %v, err = %v", v, err)
	}
}

func TestNewValidatorEmptyDir(t *testing.T) {
	// An existing directory without the schema is a misconfiguration, not
	// a request for the fallback.
	if v, err := NewValidator(t.TempDir()); err == nil || v != nil {
		t.Fatalf("v = %v, err = %v", v, err)
	}
}

func TestNewValidatorBrokenSchema(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MainSchemaFile), []byte("<xsd:schema"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := NewValidator(dir); err == nil || v != nil {
		t.Fatalf("v = %v, err = %v", v, err)
	}
}

func TestValidatorClose(t *testing.T) {
	v := newXSDValidator(t)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if v.SchemaValidated() {
		t.Fatal("still schema-validated after Close")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(context.Background(), readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml"))
	if err != nil || res.SchemaValidated {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestValidateEdgeInputs(t *testing.T) {
	v := newXSDValidator(t)
	data := readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml")
	hint := bytes.Replace(data, []byte(`<Faktura xmlns=`), []byte(`<Faktura xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="`+Namespace+` file:///nonexistent/evil.xsd" xmlns=`), 1)
	if bytes.Equal(hint, data) {
		t.Fatal("sample changed: cannot add the schema hint")
	}
	tests := []struct {
		name string
		in   []byte
		kind ErrorKind // 0: accepted
	}{
		{"utf-8 BOM (KSeF takes UTF-8 without one)", append([]byte("\xEF\xBB\xBF"), data...), KindRule},
		{"schema location hints are ignored", hint, 0},
		{"xml 1.1", bytes.Replace(data, []byte(`version="1.0"`), []byte(`version="1.1"`), 1), KindNotWellFormed},
		{"utf-16", append([]byte{0xFF, 0xFE}, data...), KindNotWellFormed},
		{"entity declaration hidden in CDATA is still refused", bytes.Replace(data, []byte("</Faktura>"), []byte("<![CDATA[<!ENTITY]]></Faktura>"), 1), KindDTD},
		{"character reference is fine", bytes.Replace(data, []byte("Samplofaktur"), []byte("Sampl&#243;faktur"), 1), 0},
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

// TestNewValidatorUnusualPath loads the schema from a directory whose path
// needs escaping in a URI (spaces, %, &, parentheses): the rewritten import
// must still resolve to the local copy.
func TestNewValidatorUnusualPath(t *testing.T) {
	src := schemaDir(t)
	dst := filepath.Join(t.TempDir(), "schemy 100% A&B (FA)")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !v.SchemaValidated() {
		t.Fatal("fallback mode")
	}
	if _, err := v.Validate(context.Background(), readSample(t, "valid", "podstawowa-FA_3_Przyklad_5.xml")); err != nil {
		t.Fatal(err)
	}
}

// TestValidateErrorsAnywhere checks that where an error is does not change the outcome: a
// well-formedness error after a schema error or a wrong root still makes the document not
// well-formed, a wrong root is reported on its own line (as Parse does), and lines past 65535
// are exact.
func TestValidateErrorsAnywhere(t *testing.T) {
	v := newXSDValidator(t)
	valid := readSample(t, "valid", "podstawowa-FA_3_Przyklad_1.xml")
	nip := readSample(t, "invalid", "seller-nip-nine-digits.xml") // schema error on line 11
	fa2 := readSample(t, "invalid", "fa2-namespace.xml")          // root on line 2
	const pad = 70000                                             // blank lines, to go past 65535
	blank := string(bytes.Repeat([]byte("\n"), pad))
	edit := func(data []byte, old, new string) []byte {
		t.Helper()
		out := bytes.Replace(data, []byte(old), []byte(new), 1)
		if bytes.Equal(out, data) {
			t.Fatalf("sample changed: %q not found", old)
		}
		return out
	}
	brokenEnd := func(data []byte) []byte { return edit(data, "</Faktura>", "<a</Faktura>") }
	tests := []struct {
		name string
		in   []byte
		kind ErrorKind // 0: accepted
		line int       // 0: the line of the first "<a" (where the document stops being well-formed); -1: not checked
		msg  string
	}{
		{"schema error, then not well-formed", brokenEnd(nip), KindNotWellFormed, 0, ""},
		{"schema error, then an undeclared prefix", edit(nip, "</Faktura>", "<x:a/></Faktura>"), KindNotWellFormed, -1, "Namespace prefix x"},
		{"wrong root, then not well-formed", brokenEnd(fa2), KindNotWellFormed, 0, ""},
		{"wrong root on its own line", edit(fa2, "\n<Faktura", "\n\n\n<Faktura"), KindNotFA3, 4, "FA(2)"},
		{"wrong root name, otherwise valid", edit(edit(valid, "<Faktura ", "<Fakturka "), "</Faktura>", "</Fakturka>"), KindNotFA3, 2, "Fakturka is not Faktura"},
		{"valid past line 65535", edit(valid, "<Naglowek>", blank+"<Naglowek>"), 0, 0, ""},
		{"schema error past line 65535", edit(nip, "<Naglowek>", blank+"<Naglowek>"), KindSchema, 11 + pad, "NIP"},
		{"not well-formed past line 65535", brokenEnd(edit(valid, "<Naglowek>", blank+"<Naglowek>")), KindNotWellFormed, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(context.Background(), tt.in)
			if k := KindOf(err); k != tt.kind {
				t.Fatalf("kind = %v, want %v (%v)", k, tt.kind, err)
			}
			if tt.kind == 0 {
				return
			}
			var ve *ValidationError
			errors.As(err, &ve)
			want := tt.line
			if want == 0 {
				want = lineAt(tt.in, bytes.Index(tt.in, []byte("<a")))
			}
			if want > 0 && ve.Line != want {
				t.Errorf("line = %d, want %d (%v)", ve.Line, want, ve)
			}
			if !strings.Contains(ve.Message, tt.msg) {
				t.Errorf("message %q does not mention %q", ve.Message, tt.msg)
			}
			if tt.kind == KindNotFA3 {
				// Parse, which does not use libxml2, must agree on the line.
				if _, perr := Parse(tt.in); fmt.Sprint(perr) != fmt.Sprint(err) {
					t.Errorf("Parse: %v, Validate: %v", perr, err)
				}
			}
		})
	}
}
