package visualize

import (
	"image"
	"image/color"
	"testing"

	qr "github.com/piglig/go-qr"
)

// TestQRModulesDecode draws the modules qrModules returns (with the quiet zone the renderers
// leave around them) and reads them back with a QR decoder: the code says what was encoded.
func TestQRModulesDecode(t *testing.T) {
	const url = "https://qr-test.ksef.mf.gov.pl/invoice/1234563218/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
	m, err := qrModules(url)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) < 21 || len(m[0]) != len(m) {
		t.Fatalf("modules %dx%d, want a square of at least 21", len(m), len(m[0]))
	}
	const scale, border = 4, 4
	n := (len(m) + 2*border) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := color.Gray{Y: 255}
			my, mx := y/scale-border, x/scale-border
			if my >= 0 && my < len(m) && mx >= 0 && mx < len(m) && m[my][mx] {
				c = color.Gray{}
			}
			img.SetGray(x, y, c)
		}
	}
	got, err := qr.Decode(img)
	if err != nil {
		t.Fatalf("decoding the drawn modules: %v", err)
	}
	if got != url {
		t.Fatalf("decoded %q, want %q", got, url)
	}
}
