package emulator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	kcrypto "github.com/ksef-pipeline/ksef-pipeline/pkg/crypto"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

func (a *api) KsefPublicKey(context.Context, ksefapi.KsefPublicKeyRequestObject) (ksefapi.KsefPublicKeyResponseObject, error) {
	return ksefapi.KsefPublicKey200JSONResponse{Algorithm: ksefapi.RSA, PublicKey: a.e.publicKey}, nil
}

func (a *api) KsefInvoiceGenerate(_ context.Context, req ksefapi.KsefInvoiceGenerateRequestObject) (ksefapi.KsefInvoiceGenerateResponseObject, error) {
	e := a.e
	opts := []fa3.GenerateOption{fa3.WithClock(e.now)}
	if e.validator.SchemaValidated() {
		opts = append(opts, fa3.WithValidator(e.validator))
	}
	xml, err := fa3.Generate(fa3wire.Request(*req.Body), opts...)
	if err != nil {
		return nil, badRequest(ksef.CodeInvoiceInput, "%s", validationDetails(err))
	}
	return ksefapi.KsefInvoiceGenerate200JSONResponse{
		InvoiceVersion: ksefapi.V3,
		InvoiceData:    string(xml),
		InvoiceHash:    kcrypto.SHA256Base64(xml),
		InvoiceSize:    int64(len(xml)),
	}, nil
}

func (a *api) KsefInvoiceValidate(ctx context.Context, req ksefapi.KsefInvoiceValidateRequestObject) (ksefapi.KsefInvoiceValidateResponseObject, error) {
	e := a.e
	data, err := io.ReadAll(req.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errf(http.StatusRequestEntityTooLarge, ksef.CodeInvoiceSize, "Faktura przekracza %d B", tooBig.Limit)
	case err != nil:
		return nil, badRequest(ksef.CodeInvoiceFormat, "Nie udało się odczytać treści żądania")
	}
	if _, err := e.validator.Validate(ctx, data); err != nil {
		var ve *fa3.ValidationError
		errors.As(err, &ve)
		switch {
		case ve != nil && ve.Kind == fa3.KindNotFA3 && bytes.Contains(data, []byte(fa3.FA2Namespace)):
			return nil, badRequest(ksef.CodeInvoiceVersion, "%s", validationDetails(err))
		case ve != nil && ve.Kind == fa3.KindTooLarge:
			return nil, badRequest(ksef.CodeInvoiceSize, "%s", validationDetails(err))
		}
		return nil, badRequest(ksef.CodeInvoiceFormat, "%s", validationDetails(err))
	}
	canonical, err := fa3.Canonical(data)
	if err != nil {
		return nil, badRequest(ksef.CodeInvoiceFormat, "%s", validationDetails(err))
	}
	return ksefapi.KsefInvoiceValidate200JSONResponse{
		InvoiceVersion: ksefapi.V3,
		Valid:          true,
		CanonicalForm:  canonical,
	}, nil
}

func (a *api) KsefInvoiceVisualize(ctx context.Context, req ksefapi.KsefInvoiceVisualizeRequestObject) (ksefapi.KsefInvoiceVisualizeResponseObject, error) {
	e := a.e
	b := req.Body
	switch {
	case b.InvoiceData == "":
		return nil, badRequest(ksef.CodeInvoiceInput, "Brak wymaganego pola invoiceData")
	case !b.OutputFormat.Valid():
		return nil, badRequest(ksef.CodeInvoiceInput, "Nieznany outputFormat %q (html, pdf)", clip(string(b.OutputFormat), 40))
	case !b.OutputLanguage.Valid():
		return nil, badRequest(ksef.CodeInvoiceInput, "Nieznany outputLanguage %q (pl, en, pl_en)", clip(string(b.OutputLanguage), 40))
	case int64(len(b.InvoiceData)) > e.cfg.MaxInvoiceSize:
		return nil, badRequest(ksef.CodeInvoiceSize, "Faktura ma %d B, dopuszczalne %d B", len(b.InvoiceData), e.cfg.MaxInvoiceSize)
	}
	opts := visualize.Options{
		Format:      visualize.Format(b.OutputFormat),
		Language:    visualize.Language(b.OutputLanguage),
		Environment: e.cfg.Environment,
	}
	if b.InvoiceKsefNumber != nil {
		opts.KsefNumber = *b.InvoiceKsefNumber
	}
	if b.Offline != nil {
		opts.Offline = *b.Offline
	}
	var buf bytes.Buffer
	if err := e.renderer.Render(ctx, &buf, []byte(b.InvoiceData), opts); err != nil {
		if errors.Is(err, visualize.ErrInvalidInvoice) || errors.Is(err, visualize.ErrUnsupported) {
			return nil, badRequest(ksef.CodeInvoiceVisualize, "%s", clip(err.Error(), 1000))
		}
		e.log.Error().Err(err).Msg("visualizing")
		return nil, errf(http.StatusInternalServerError, ksef.CodeInvoiceVisualize, "Nie udało się wygenerować wizualizacji")
	}
	if b.OutputFormat == ksefapi.Pdf {
		return ksefapi.KsefInvoiceVisualize200ApplicationpdfResponse{Body: &buf, ContentLength: int64(buf.Len())}, nil
	}
	return ksefapi.KsefInvoiceVisualize200TexthtmlResponse{Body: &buf, ContentLength: int64(buf.Len())}, nil
}
