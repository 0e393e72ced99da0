package visualize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"codeberg.org/go-pdf/fpdf"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// hostileSize is the largest invoice the visualizer reads (KSeF's limit with
// attachments).
const hostileSize = 3 << 20

// hostile returns the hostile invoices of about hostileSize bytes: one field
// far over its schema length (one word, or words), and as many lines as fit.
func hostile() []struct {
	name string
	data []byte
} {
	word := strings.Repeat("W", hostileSize)
	words := strings.Repeat("słowo ", hostileSize/7)
	one := func(name string) []byte {
		return invoiceXML("FV/1", "S", "B", []line{{name: name, unit: "szt.", qty: "1", price: "10.00", net: "10.00", rate: "23"}}, "10.00", "2.30", "12.30")
	}
	// Lines of a 240-character name each, as many as fit in hostileSize.
	name := strings.Repeat("Usługa ", 34)
	per := len(invoiceXML("", "", "", []line{{name: name, unit: "szt.", qty: "1", price: "1.00", net: "1.00", rate: "23"}}, "", "", "")) -
		len(invoiceXML("", "", "", nil, "", "", ""))
	n := hostileSize / per
	lines := make([]line, n)
	for i := range lines {
		lines[i] = line{name: name, unit: "szt.", qty: "1", price: "1.00", net: "1.00", rate: "23"}
	}
	return []struct {
		name string
		data []byte
	}{
		{"one-word-P_7", one(word)},
		{"words-P_7", one(words)},
		{fmt.Sprintf("%d-lines", n), invoiceXML("FV/1", "S", "B", lines, "1.00", "0.23", "1.23")},
	}
}

func schemaValidator(t testing.TB) *fa3.Validator {
	t.Helper()
	v, err := fa3.NewValidator(samplesDir(t)+"/../../official/faktury/schemy/FA", fa3.WithMaxSize(hostileSize+1<<16))
	if err != nil {
		t.Fatal(err)
	}
	if !v.SchemaValidated() {
		t.Skip("FA(3) schema not found beside the repository")
	}
	return v
}

// BenchmarkRenderHostile renders (or refuses) invoices of about 3 MB built to
// be expensive, with the parse-only renderer (caps only) and with the one the
// visualizer uses for requests (schema first). See docs/benchmarks.md.
func BenchmarkRenderHostile(b *testing.B) {
	plain, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	checked, err := NewRenderer(WithValidator(schemaValidator(b)))
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range hostile() {
		for _, r := range []struct {
			name string
			r    *Renderer
			opts Options
		}{{"parse", plain, Options{}}, {"schema", checked, Options{RequireSchema: true}}} {
			b.Run(h.name+"/"+r.name, func(b *testing.B) {
				b.SetBytes(int64(len(h.data)))
				var refused bool
				for b.Loop() {
					err := r.r.Render(context.Background(), io.Discard, h.data, r.opts)
					if err != nil && !errors.Is(err, ErrInvalidInvoice) {
						b.Fatal(err)
					}
					refused = err != nil
				}
				if refused {
					b.ReportMetric(1, "refused")
				} else {
					b.ReportMetric(0, "refused")
				}
			})
		}
	}
}

// TestRenderHostileBounded: an over-long field is cut at the schema's longest
// length, a list over its maxOccurs is refused, a schema-checking renderer
// refuses what the schema refuses, and a request that needs the schema is
// refused without one.
func TestRenderHostileBounded(t *testing.T) {
	plain := testRenderer(t)
	checked, err := NewRenderer(WithValidator(schemaValidator(t)))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("W", 100_000)
	one := invoiceXML("FV/1", "S", "B", []line{{name: long, unit: "szt.", qty: "1", price: "10.00", net: "10.00", rate: "23"}}, "10.00", "2.30", "12.30")
	tooMany := make([]line, MaxListEntries+1)
	for i := range tooMany {
		tooMany[i] = line{name: "x", unit: "szt.", qty: "1", price: "1.00", net: "1.00", rate: "23"}
	}
	cases := []struct {
		name    string
		r       *Renderer
		data    []byte
		opts    Options
		wantErr error
		// maxHTML bounds the HTML output: the long field must have been cut.
		maxHTML int
	}{
		{"long field cut", plain, one, Options{Format: FormatHTML}, nil, 64 << 10},
		{"long field refused by the schema", checked, one, Options{Format: FormatHTML}, ErrInvalidInvoice, 0},
		{"list over maxOccurs refused", plain, invoiceXML("FV/1", "S", "B", tooMany, "1.00", "0.23", "1.23"), Options{Format: FormatHTML}, ErrInvalidInvoice, 0},
		{"schema required, none loaded", plain, manyLines(1), Options{RequireSchema: true}, ErrUnsupported, 0},
		{"schema required and valid", checked, manyLines(3), Options{Format: FormatHTML, RequireSchema: true}, nil, 64 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			err := c.r.Render(context.Background(), &out, c.data, c.opts)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Render: %v, want %v", err, c.wantErr)
				}
				if out.Len() != 0 {
					t.Errorf("%d bytes written with an error", out.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.Len() > c.maxHTML {
				t.Errorf("HTML is %d bytes, want at most %d", out.Len(), c.maxHTML)
			}
			if strings.Contains(out.String(), strings.Repeat("W", MaxFieldRunes)) {
				t.Errorf("a field of %d runes was not cut", MaxFieldRunes)
			}
		})
	}
}

// TestRenderCancelled: a cancelled context stops a long rendering and writes nothing.
func TestRenderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	err := testRenderer(t).Render(ctx, &out, manyLines(2000), Options{})
	if !errors.Is(err, context.Canceled) || out.Len() != 0 {
		t.Fatalf("Render with a cancelled context: %v, %d bytes written", err, out.Len())
	}
	// Cancelled while wrapping: wrap stops and the rendering reports it.
	p := newTestWriter(t, ctx)
	if lines := p.wrap(strings.Repeat("a b\n", 10_000), 50); len(lines) != 0 {
		t.Errorf("wrap under a cancelled context made %d lines", len(lines))
	}
}

// TestWrapLongWord: a word far wider than a line is cut into pieces that each
// fit, lose nothing and (but for the last) could not take one more rune.
func TestWrapLongWord(t *testing.T) {
	p := newTestWriter(t, context.Background())
	p.font("", sizeText)
	const w = 40.0
	for _, word := range []string{strings.Repeat("W", 20_000), strings.Repeat("ąi", 9_999), "short words only"} {
		lines := p.wrap(word, w)
		if got := strings.Join(lines, ""); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(word, " ", "") {
			t.Fatalf("wrapping lost text: %d runes in, %d out", len(word), len(got))
		}
		for i, ln := range lines {
			if lw := p.f.GetStringWidth(ln); lw > w+1e-9 {
				t.Fatalf("line %d is %.2f mm wide, want <= %.0f", i, lw, w)
			}
			if i < len(lines)-1 && !strings.Contains(word, " ") {
				next := lines[i+1][:1]
				if p.f.GetStringWidth(ln+next) <= w {
					t.Fatalf("line %d could have taken one more rune", i)
				}
			}
		}
	}
}

// FuzzRender: whatever the bytes, Render returns (an error or a document)
// without panicking, and an error writes nothing. The seeds are valid
// invoices and the hostile shapes.
func FuzzRender(f *testing.F) {
	f.Add(manyLines(2))
	f.Add(invoiceXML("FV/1", "S", "B", []line{{name: strings.Repeat("W", 600), unit: "szt.", qty: "1", price: "1.00", net: "1.00", rate: "23"}}, "1.00", "0.23", "1.23"))
	f.Add([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"EBCDIC-US\"?><Faktura/>"))
	f.Add([]byte("<!DOCTYPE x [<!ENTITY a \"b\">]><Faktura/>"))
	r, err := NewRenderer()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{FormatHTML, FormatPDF} {
			var out bytes.Buffer
			err := r.Render(context.Background(), &out, data, Options{Format: format})
			if err != nil && out.Len() != 0 {
				t.Fatalf("%s: error %v with %d bytes written", format, err, out.Len())
			}
			if err != nil && !errors.Is(err, ErrInvalidInvoice) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%s: unexpected error class: %v", format, err)
			}
		}
	})
}

// newTestWriter is a pdfWriter on a blank page, for the layout primitives.
func newTestWriter(t *testing.T, ctx context.Context) *pdfWriter {
	t.Helper()
	r := testRenderer(t)
	f := fpdf.NewCustom(&fpdf.InitType{OrientationStr: "P", UnitStr: "mm", SizeStr: "A4"})
	f.AddUTF8FontFromBytes(fontFamily, "", r.fonts.regular)
	f.AddUTF8FontFromBytes(fontFamily, "B", r.fonts.bold)
	f.AddPage()
	p := &pdfWriter{ctx: ctx, f: f, fonts: r.fonts, doc: &document{}, width: pageW - 2*marginX}
	p.font("", sizeText)
	return p
}
