// Command samples renders sample FA(3) invoices to PDF (and HTML) and, with
// pdftoppm, the first page of each PDF to a PNG, for the documentation
// images in docs/img:
//
//	go run ./pkg/visualize/internal/cmd/samples -out docs/img
//
// Each argument is lang:file[:ksefNumber] (file relative to
// ../shared/ksef/samples/valid from the repository root); without a KSeF
// number the QR code is labelled OFFLINE. Without arguments the two
// documented samples are rendered: a basic invoice in Polish before it has
// a KSeF number, and a correcting invoice in Polish and English with one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "samples:", err)
		os.Exit(1)
	}
}

var defaults = []string{
	"pl:podstawowa-FA_3_Przyklad_1.xml",
	"pl_en:korygujaca-FA_3_Przyklad_4.xml:1234567890-20260228-0100A1B2C3D4-E9",
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("samples", flag.ContinueOnError)
	out := fs.String("out", "docs/img", "output directory for PNGs")
	keep := fs.Bool("keep", false, "keep the PDF and HTML next to the PNG")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	specs := fs.Args()
	if len(specs) == 0 {
		specs = defaults
	}
	r, err := visualize.NewRenderer()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, spec := range specs {
		parts := strings.SplitN(spec, ":", 3)
		if len(parts) < 2 {
			return fmt.Errorf("argument %q: want lang:file[:ksefNumber]", spec)
		}
		lang, file, ksef := parts[0], parts[1], ""
		if len(parts) == 3 {
			ksef = parts[2]
		}
		data, err := os.ReadFile(filepath.Join(root, "..", "shared", "ksef", "samples", "valid", file))
		if err != nil {
			return err
		}
		base := "invoice-" + strings.TrimSuffix(strings.SplitN(file, "-", 2)[0], ".xml") + "-" + lang
		pdfPath := filepath.Join(*out, base+".pdf")
		opts := visualize.Options{Format: visualize.FormatPDF, Language: visualize.Language(lang), KsefNumber: ksef}
		if err := renderTo(ctx, r, pdfPath, data, opts); err != nil {
			return err
		}
		if *keep {
			opts.Format = visualize.FormatHTML
			if err := renderTo(ctx, r, filepath.Join(*out, base+".html"), data, opts); err != nil {
				return err
			}
		}
		png := filepath.Join(*out, base)
		cmd := exec.CommandContext(ctx, "pdftoppm", "-png", "-r", "80", "-singlefile", pdfPath, png)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("pdftoppm: %w", err)
		}
		if !*keep {
			os.Remove(pdfPath)
		}
		fmt.Fprintln(stdout, png+".png")
	}
	return nil
}

func renderTo(ctx context.Context, r *visualize.Renderer, path string, data []byte, opts visualize.Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = r.Render(ctx, f, data, opts)
	return errors.Join(err, f.Close())
}

// repoRoot finds the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}
