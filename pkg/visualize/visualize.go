// Package visualize renders FA(3) invoices as PDF and HTML in the layout of
// the Ministry of Finance's KSeF visualization ("wizualizacja" of
// e-Faktura): header with the invoice and KSeF numbers, seller and buyer side
// by side, third parties, details, line items, VAT rate summary,
// annotations, payment, footer and the KSeF verification QR code (KOD I).
//
// Both formats are built from one intermediate document, so they carry the
// same content; labels come in Polish, English or both (pl_en).
package visualize

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// Format is the output format; the values are those of ksefapi.OutputFormat.
type Format string

// Output formats.
const (
	FormatHTML Format = "html"
	FormatPDF  Format = "pdf"
)

// Language is the language of the labels; the values are those of
// ksefapi.OutputLanguage.
type Language string

// Languages.
const (
	LangPL   Language = "pl"
	LangEN   Language = "en"
	LangPLEN Language = "pl_en" // bilingual labels: "Sprzedawca / Seller"
)

// Errors returned by Render; callers branch on them with errors.Is.
var (
	// ErrInvalidInvoice wraps the parse error of an invoice that is not a
	// well-formed FA(3) document.
	ErrInvalidInvoice = errors.New("visualize: invalid FA(3) invoice")
	// ErrUnsupported reports an unknown format, language or invoice type.
	ErrUnsupported = errors.New("visualize: unsupported")
)

// QRInfo carries the data of the verification links. Everything is optional:
// by default KOD I is built from the seller's NIP, the issue date P_1 and the
// SHA-256 of the invoice bytes being rendered.
type QRInfo struct {
	// InvoiceSHA256 is the SHA-256 of the invoice file as sent to KSeF. Set it
	// when the bytes rendered differ from the bytes sent.
	InvoiceSHA256 []byte
	// URL replaces the computed KOD I link.
	URL string
	// CertificateURL is KOD II, the signed certificate verification link of
	// an offline invoice; it is drawn labelled "CERTYFIKAT" when set.
	CertificateURL string
}

// Options select what Render produces.
type Options struct {
	Format   Format   // default FormatPDF
	Language Language // default LangPL
	// KsefNumber is the number KSeF assigned; it is printed in the header and
	// under the QR code. Empty means not (yet) known.
	KsefNumber string
	// Offline marks an invoice issued in an offline mode.
	Offline bool
	// QR overrides the verification link data.
	QR *QRInfo
	// Environment is "test", "demo" or "prod" (default "test"), or a base URL
	// such as an emulator's, for the verification link.
	Environment string
	// RequireSchema refuses (ErrUnsupported) unless the Renderer validates
	// against the FA(3) XSD (WithValidator, not in fallback mode): for input
	// nobody has validated yet, such as a visualization request's.
	RequireSchema bool
}

// RendererOption configures a Renderer.
type RendererOption func(*Renderer)

// WithValidator makes Render validate every invoice with v (size limit,
// DOCTYPE, well-formedness, the XSD) before rendering it, instead of only
// parsing it.
func WithValidator(v *fa3.Validator) RendererOption {
	return func(r *Renderer) { r.validator = v }
}

// Renderer renders invoices. It is safe for concurrent use.
type Renderer struct {
	fonts     fontSet
	html      *htmlRenderer
	parse     func([]byte) (*fa3.Invoice, error)
	validator *fa3.Validator // nil: parse only
	producer  string
}

// NewRenderer loads the embedded fonts and parses the HTML template once.
func NewRenderer(opts ...RendererOption) (*Renderer, error) {
	fonts, err := loadFonts()
	if err != nil {
		return nil, err
	}
	h, err := newHTMLRenderer()
	if err != nil {
		return nil, err
	}
	r := &Renderer{fonts: fonts, html: h, parse: fa3.Parse, producer: "ksef-pipeline visualize"}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Render parses invoiceXML and writes its visualization to w. Nothing is
// written when an error is returned.
func (r *Renderer) Render(ctx context.Context, w io.Writer, invoiceXML []byte, opts Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.Format == "" {
		opts.Format = FormatPDF
	}
	if opts.Language == "" {
		opts.Language = LangPL
	}
	switch opts.Format {
	case FormatHTML, FormatPDF:
	default:
		return fmt.Errorf("%w: format %q", ErrUnsupported, opts.Format)
	}
	switch opts.Language {
	case LangPL, LangEN, LangPLEN:
	default:
		return fmt.Errorf("%w: language %q", ErrUnsupported, opts.Language)
	}
	inv, err := r.invoice(ctx, invoiceXML, opts.RequireSchema)
	if err != nil {
		return err
	}
	if _, ok := invoiceTitles[inv.Fa.RodzajFaktury]; !ok {
		return fmt.Errorf("%w: invoice type %q", ErrUnsupported, inv.Fa.RodzajFaktury)
	}
	doc, err := buildDocument(inv, invoiceXML, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch opts.Format {
	case FormatHTML:
		err = r.html.render(&buf, doc)
	default:
		err = r.renderPDF(ctx, &buf, doc)
	}
	if err != nil {
		return err
	}
	_, err = buf.WriteTo(w)
	return err
}

// invoice validates (or, without a validator, parses) data and bounds what
// will be rendered of it.
func (r *Renderer) invoice(ctx context.Context, data []byte, requireSchema bool) (*fa3.Invoice, error) {
	if requireSchema && (r.validator == nil || !r.validator.SchemaValidated()) {
		return nil, fmt.Errorf("%w: this invoice must be validated against the FA(3) schema first, and no schema is loaded", ErrUnsupported)
	}
	var inv *fa3.Invoice
	if r.validator != nil {
		res, err := r.validator.Validate(ctx, data)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInvoice, err)
		}
		inv = res.Invoice
	} else {
		var err error
		if inv, err = r.parse(data); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidInvoice, err)
		}
	}
	if err := capInvoice(inv); err != nil {
		return nil, err
	}
	return inv, nil
}

// qrBaseURLs are the KOD I hosts per environment (kody-qr.md).
var qrBaseURLs = map[string]string{
	"test": "https://qr-test.ksef.mf.gov.pl",
	"te":   "https://qr-test.ksef.mf.gov.pl",
	"demo": "https://qr-demo.ksef.mf.gov.pl",
	"prod": "https://qr.ksef.mf.gov.pl",
	"prd":  "https://qr.ksef.mf.gov.pl",
}

// VerificationURL builds KOD I, the invoice verification link:
// {base}/invoice/{sellerNIP}/{DD-MM-YYYY}/{SHA-256 as base64url without
// padding}. env is "test", "demo" or "prod" (empty means test) or a base URL.
func VerificationURL(env string, sellerNIP string, issueDate time.Time, invoiceSHA256 []byte) string {
	env = strings.TrimSpace(env)
	if env == "" {
		env = "test"
	}
	base, ok := qrBaseURLs[strings.ToLower(env)]
	if !ok {
		base = strings.TrimRight(env, "/")
	}
	return base + "/invoice/" + sellerNIP + "/" + issueDate.Format("02-01-2006") + "/" +
		base64.RawURLEncoding.EncodeToString(invoiceSHA256)
}

// invoiceVerificationURL is KOD I for inv, or "" when it cannot be built
// (no seller NIP or an unreadable issue date).
func invoiceVerificationURL(inv *fa3.Invoice, raw []byte, opts Options) string {
	if opts.QR != nil && opts.QR.URL != "" {
		return opts.QR.URL
	}
	nip := strings.TrimSpace(inv.Podmiot1.DaneIdentyfikacyjne.NIP)
	issued, err := time.Parse(time.DateOnly, strings.TrimSpace(inv.Fa.P_1))
	if nip == "" || err != nil {
		return ""
	}
	var sum []byte
	if opts.QR != nil && len(opts.QR.InvoiceSHA256) > 0 {
		sum = opts.QR.InvoiceSHA256
	} else {
		s := sha256.Sum256(raw)
		sum = s[:]
	}
	return VerificationURL(opts.Environment, nip, issued, sum)
}
