package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the metric families of one scrape (the text exposition format), for tests and
// tools that read a /metrics page.
type Samples map[string]*dto.MetricFamily

// ParseSamples reads the text exposition format.
func ParseSamples(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("telemetry: parsing metrics: %w", err)
	}
	return Samples(fams), nil
}

// Scrape fetches and parses the metrics page at url.
func Scrape(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telemetry: scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("telemetry: scraping %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseSamples(resp.Body)
}

// Sum adds the values (counters, gauges, untyped; histogram sample counts) of name's series
// whose labels include every given pair ("worker", "sender", ...). A missing series counts 0.
func (s Samples) Sum(name string, labels ...string) float64 {
	f := s[name]
	if f == nil {
		return 0
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	var sum float64
	for _, m := range f.GetMetric() {
		match := 0
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		sum += s.value(m)
	}
	return sum
}

// LabelValues lists the values label takes in name's series.
func (s Samples) LabelValues(name, label string) []string {
	seen := map[string]bool{}
	for _, m := range s[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				seen[lp.GetValue()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// String lists the series, one a line (test failure messages).
func (s Samples) String() string {
	names := make([]string, 0, len(s))
	for n := range s {
		if strings.HasPrefix(n, "ksef_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		for _, m := range s[n].GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			fmt.Fprintf(&b, "%s{%s} %v\n", n, strings.Join(ls, ","), s.value(m))
		}
	}
	return b.String()
}

func (s Samples) value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}
