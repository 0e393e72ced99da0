package fa3

import (
	"bytes"
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"
)

// leaves flattens a document into "path=text" entries (attributes as
// path/@name), in document order, ignoring namespaces and whitespace-only text.
func leaves(t *testing.T, data []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var path []string
	var text strings.Builder
	var out []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			path = append(path, tk.Name.Local)
			text.Reset()
			for _, a := range tk.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				out = append(out, strings.Join(path, "/")+"/@"+a.Name.Local+"="+a.Value)
			}
		case xml.CharData:
			text.Write(tk)
		case xml.EndElement:
			if s := strings.TrimSpace(text.String()); s != "" {
				out = append(out, strings.Join(path, "/")+"="+s)
			}
			text.Reset()
			path = path[:len(path)-1]
		}
	}
}

// TestModelCoversSamples checks that unmarshalling and marshalling each valid
// sample through the model keeps every element, attribute and value in
// order: a field missing from the model, a misspelt tag or a wrong field
// order shows up as a difference.
func TestModelCoversSamples(t *testing.T) {
	for _, s := range samples(t, "valid") {
		t.Run(s.name, func(t *testing.T) {
			inv, err := Parse(s.data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := xml.Marshal(inv)
			if err != nil {
				t.Fatal(err)
			}
			want, got := leaves(t, s.data), leaves(t, out)
			if !slices.Equal(want, got) {
				for i := 0; i < max(len(want), len(got)); i++ {
					var w, g string
					if i < len(want) {
						w = want[i]
					}
					if i < len(got) {
						g = got[i]
					}
					if w != g {
						t.Fatalf("first difference at leaf %d:\n original: %s\n model:    %s", i, w, g)
					}
				}
			}
		})
	}
}
