package pipeline

import (
	"fmt"

	"github.com/ksef-pipeline/ksef-pipeline/internal/visualizer"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/visualize"
)

// renderer is the visualizer's renderer: every invoice is validated before it is rendered, with
// its own validator because the visualizer reads invoices up to KSeF's 3 MB limit for invoices
// with attachments, where the sender's stops at 1 MB. Without a schema it validates structurally,
// and invoice.visualize requests are refused (visualizer.render asks for the schema).
func (r *Runtime) renderer() (*visualize.Renderer, error) {
	v, err := fa3.NewValidator(r.Settings.SchemaDir, fa3.WithMaxSize(visualizer.DefaultMaxInvoiceSize))
	if err != nil {
		return nil, fmt.Errorf("loading the FA(3) schema for the visualizer: %w", err)
	}
	return visualize.NewRenderer(visualize.WithValidator(v))
}
