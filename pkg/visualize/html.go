package visualize

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

//go:embed templates/invoice.html.tmpl
var templateFS embed.FS

// htmlRenderer executes the parsed template; html/template escapes every
// value, so invoice text can never inject markup.
type htmlRenderer struct{ t *template.Template }

func newHTMLRenderer() (*htmlRenderer, error) {
	t, err := template.New("invoice.html.tmpl").Funcs(template.FuncMap{
		"lines":   htmlLines,
		"brand":   htmlBrand,
		"svgPath": svgPath,
		"qrSize":  func(m [][]bool) int { return len(m) + 8 },
		"align": func(cols []column, i int) string {
			if i < len(cols) {
				return strings.ToLower(cols[i].Align)
			}
			return "l"
		},
	}).ParseFS(templateFS, "templates/invoice.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("visualize: parse template: %w", err)
	}
	return &htmlRenderer{t: t}, nil
}

func (h *htmlRenderer) render(w io.Writer, d *document) error {
	if err := h.t.Execute(w, d); err != nil {
		return fmt.Errorf("visualize: html: %w", err)
	}
	return nil
}

// htmlLines escapes s and turns its line breaks into <br>.
func htmlLines(s string) template.HTML {
	parts := strings.Split(s, "\n")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(strings.Join(parts, "<br>"))
}

// htmlBrand escapes the system's name and colours the "e" of e-Faktur.
func htmlBrand(s string) template.HTML {
	i := strings.Index(s, "e-Faktur")
	if i < 0 {
		return template.HTML(template.HTMLEscapeString(s))
	}
	return template.HTML(template.HTMLEscapeString(s[:i]) + `<span class="e">e</span>` + template.HTMLEscapeString(s[i+1:]))
}
