package visualize

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkRenderTypical renders invoices of the sizes the pipeline mostly sees (the 1,000-line
// benchmark bounds memory; these give the cost per ordinary PDF).
func BenchmarkRenderTypical(b *testing.B) {
	r, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	for _, lines := range []int{3, 20, 100} {
		b.Run(fmt.Sprintf("%dlines", lines), func(b *testing.B) {
			data := manyLines(lines)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Render(context.Background(), io.Discard, data, Options{Format: FormatPDF, Language: LangPL}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
