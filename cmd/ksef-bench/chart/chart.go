package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/ksef-pipeline/ksef-pipeline/internal/bench"
)

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// writeChart draws throughput against worker replicas and the latency percentiles of the
// end-to-end runs side by side, as a PNG.
func writeChart(w io.Writer, r *bench.Report) error {
	left, err := throughputPlot(r)
	if err != nil {
		return err
	}
	right, err := latencyPlot(r)
	if err != nil {
		return err
	}
	const width, height = 30 * vg.Centimeter, 12 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadY: vg.Centimeter / 2, PadTop: vg.Centimeter / 2,
		PadBottom: vg.Centimeter / 2, PadLeft: vg.Centimeter / 2, PadRight: vg.Centimeter / 2}
	plots := [][]*plot.Plot{{left, right}}
	canvases := plot.Align(plots, t, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// throughputPlot: invoices/s of the zero-latency runs, in-process and with 1, 2, 4 replicas;
// and the raw JetStream floor and the baseline for scale.
func throughputPlot(r *bench.Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput, no KSeF latency (%d CPUs)", r.Machine.CPUs)
	p.Y.Label.Text = "accepted invoices / s"
	var names []string
	var vals plotter.Values
	for _, e := range r.E2E {
		if e.Latency == bench.ZeroLatency && e.Rate == 0 {
			label := "in-process"
			if e.Visualize {
				label += "\n+PDF"
			}
			names = append(names, label)
			vals = append(vals, e.Throughput)
		}
	}
	for _, e := range r.Scaling {
		names = append(names, fmt.Sprintf("%d × proc", e.Replicas))
		vals = append(vals, e.Throughput)
	}
	if len(vals) == 0 {
		names, vals = []string{"(none)"}, plotter.Values{0}
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return nil, err
	}
	bars.Color = palette[0]
	bars.LineStyle.Width = 0
	p.Add(bars, plotter.NewGrid())
	p.NominalX(names...)
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: barTops(vals), Labels: formatVals(vals, "%.0f")})
	if err == nil {
		p.Add(labels)
	}
	p.Y.Min = 0
	p.Y.Max = maxVal(vals) * 1.15
	return p, nil
}

// latencyPlot: p50, p95, p99 of submitted -> accepted per end-to-end run, in milliseconds on a
// log scale (paced runs are tens of milliseconds, flooded ones seconds of queueing).
func latencyPlot(r *bench.Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency submitted → accepted"
	p.Y.Label.Text = "milliseconds (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var names []string
	var series [3]plotter.XYs
	lo, hi := math.Inf(1), 0.0
	for _, e := range r.E2E {
		if e.Accepted == 0 {
			continue
		}
		x := float64(len(names))
		names = append(names, shortName(e))
		for i, d := range []time.Duration{e.P50, e.P95, e.P99} {
			v := max(float64(d)/float64(time.Millisecond), 0.1)
			series[i] = append(series[i], plotter.XY{X: x + float64(i-1)*0.18, Y: v})
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if len(names) == 0 {
		names, lo, hi = []string{"(none)"}, 1, 10
		for i := range series {
			series[i] = plotter.XYs{{X: 0, Y: 1}}
		}
	}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}}
	for i, name := range []string{"p50", "p95", "p99"} {
		sc, err := plotter.NewScatter(series[i])
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: palette[i], Radius: vg.Points(4), Shape: shapes[i]}
		p.Add(sc)
		p.Legend.Add(name, sc)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi*1.5)))
	return p, nil
}

func shortName(e bench.E2E) string {
	s := "no lat."
	if e.Latency != bench.ZeroLatency {
		s = "KSeF lat."
	}
	if e.Visualize {
		s += "\n+PDF"
	}
	if e.Rate > 0 {
		s += fmt.Sprintf("\npaced %.0f/s", e.Rate)
	} else {
		s += "\nflood"
	}
	return s
}

func barTops(v plotter.Values) plotter.XYs {
	out := make(plotter.XYs, len(v))
	for i, y := range v {
		out[i] = plotter.XY{X: float64(i), Y: y}
	}
	return out
}

func formatVals(v plotter.Values, f string) []string {
	out := make([]string, len(v))
	for i, y := range v {
		out[i] = fmt.Sprintf(f, y)
	}
	return out
}

func maxVal(v plotter.Values) float64 {
	m := 1e-9
	for _, y := range v {
		m = max(m, y)
	}
	return m
}
