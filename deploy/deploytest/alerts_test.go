package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// metricNames are every metric the pipeline exports, as documented.
var metricNames = []string{
	telemetry.MetricEventsHandled, telemetry.MetricHandlerDuration, telemetry.MetricDeadLetters,
	telemetry.MetricAPIRequests, telemetry.MetricAPIDuration, telemetry.MetricAPIRetries, telemetry.MetricAPIThrottled,
	telemetry.MetricRateLimitWaits, telemetry.MetricStorageBytes, telemetry.MetricOpenSessions,
	telemetry.MetricInvoicesWarned, telemetry.MetricWarnings,
	telemetry.MetricConsumerPending, telemetry.MetricConsumerAckPending, telemetry.MetricDependencyUp, telemetry.MetricWorkerAlive,
}

// anchors are the GitHub anchors of a markdown file's headings.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.SplitSeq(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		a := strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")
		if n := seen[a]; n > 0 {
			out[a+"-"+string(rune('0'+n))] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestAlertRules: every rule names only metrics the pipeline exports and points at a runbook
// section that exists; every metric is documented.
func TestAlertRules(t *testing.T) {
	root := testenv.RepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range metricNames {
		known[m] = true
		if !strings.Contains(string(doc), "`"+m+"`") {
			t.Errorf("metric %s is not documented in docs/operations.md", m)
		}
	}
	heads := anchors(string(doc))
	metricRef := regexp.MustCompile(`ksef_[a-z_]+`)
	names := map[string]bool{}
	n := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("rule %q: missing or repeated name", r.Alert)
			}
			names[r.Alert] = true
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: expression %q", r.Alert, r.Expr)
			}
			refs := metricRef.FindAllString(r.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("%s uses no pipeline metric", r.Alert)
			}
			for _, m := range refs {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("%s uses %s, which the pipeline does not export", r.Alert, m)
				}
			}
			switch r.Labels["severity"] {
			case "info", "warning", "critical":
			default:
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			book, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/operations.md#")
			if !ok || !heads[book] {
				t.Errorf("%s: runbook %q is not a section of docs/operations.md", r.Alert, r.Annotations["runbook"])
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s has no summary", r.Alert)
			}
		}
	}
	if n < 8 {
		t.Errorf("%d rules", n)
	}
}
