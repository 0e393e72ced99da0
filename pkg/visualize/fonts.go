package visualize

import (
	"fmt"
	"strings"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
)

// fontFamily is the name the PDF uses for the embedded Go fonts (WGL4
// coverage: all Polish letters).
const fontFamily = "GoSans"

// fontSet holds the TTF bytes and which runes both faces can draw.
type fontSet struct {
	regular, bold []byte
	// covered[r] reports whether rune r (BMP only) has a glyph in both faces.
	covered []bool
}

func loadFonts() (fontSet, error) {
	fs := fontSet{regular: goregular.TTF, bold: gobold.TTF, covered: make([]bool, 0x10000)}
	var faces []*sfnt.Font
	for _, b := range [][]byte{fs.regular, fs.bold} {
		f, err := sfnt.Parse(b)
		if err != nil {
			return fontSet{}, fmt.Errorf("visualize: parse embedded font: %w", err)
		}
		faces = append(faces, f)
	}
	var buf sfnt.Buffer
	for r := rune(0x20); r < 0x10000; r++ {
		ok := true
		for _, f := range faces {
			if gi, err := f.GlyphIndex(&buf, r); err != nil || gi == 0 {
				ok = false
				break
			}
		}
		fs.covered[r] = ok
	}
	return fs, nil
}

// clean makes s drawable: tabs and other white space become spaces, and a
// rune without a glyph becomes '?', so that no text silently disappears and
// fpdf never indexes past its width tables. Line breaks are kept.
func (fs fontSet) clean(s string) string {
	ok := true
	for _, r := range s {
		if r != '\n' && (r >= 0x10000 || !fs.covered[r]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\r':
			return -1
		case r < 0x20:
			return ' '
		case r >= 0x10000 || !fs.covered[r]:
			return '?'
		}
		return r
	}, s)
}
