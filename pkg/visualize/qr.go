package visualize

import (
	"fmt"
	"strings"

	qr "github.com/piglig/go-qr"
)

// qrModules encodes s as a QR code (ISO/IEC 18004, error correction at least
// M: the encoder raises it when that fits the same version) and returns its
// modules without the quiet zone, indexed [y][x]; the renderers draw them as
// vector squares, so the code is sharp at any zoom and the output does not
// depend on an image encoder.
func qrModules(s string) ([][]bool, error) {
	q, err := qr.EncodeText(s, qr.Medium)
	if err != nil {
		return nil, fmt.Errorf("visualize: QR code: %w", err)
	}
	n := q.Size()
	m := make([][]bool, n)
	for y := range m {
		m[y] = make([]bool, n)
		for x := range m[y] {
			m[y][x] = q.Module(x, y)
		}
	}
	return m, nil
}

// qrCodes builds KOD I, labelled with the KSeF number when it is known and
// "OFFLINE" otherwise (kody-qr.md), and KOD II labelled "CERTYFIKAT" when
// the caller supplies the signed certificate link.
func (b *builder) qrCodes(raw []byte, opts Options) ([]qrCode, error) {
	l := b.l
	var out []qrCode
	if url := invoiceVerificationURL(b.inv, raw, opts); url != "" {
		label := strings.TrimSpace(opts.KsefNumber)
		if label == "" {
			label = "OFFLINE"
		}
		m, err := qrModules(url)
		if err != nil {
			return nil, err
		}
		out = append(out, qrCode{Title: l.tr(lblQRTitle), Hint: l.tr(lblQRHint), URL: url, Label: label, Modules: m})
	}
	if opts.QR != nil && opts.QR.CertificateURL != "" {
		m, err := qrModules(opts.QR.CertificateURL)
		if err != nil {
			return nil, err
		}
		out = append(out, qrCode{Title: l.tr(lblQRCertTitle), URL: opts.QR.CertificateURL, Label: "CERTYFIKAT", Modules: m})
	}
	return out, nil
}

// svgPath is the modules as one SVG path of unit squares, for the HTML.
func svgPath(m [][]bool) string {
	var b strings.Builder
	for y, rowMods := range m {
		for x := 0; x < len(rowMods); x++ {
			if !rowMods[x] {
				continue
			}
			// Merge horizontal runs into one rectangle.
			run := 1
			for x+run < len(rowMods) && rowMods[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run - 1
		}
	}
	return b.String()
}
