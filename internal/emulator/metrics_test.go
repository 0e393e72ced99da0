package emulator

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// gather sums the collector's series of name whose labels include want.
func gather(t *testing.T, c prometheus.Collector, name string, want map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestCollectorReadsTheStats(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Faults.TooManyRate = 1
		c.Faults.RetryAfter = time.Second
		c.Faults.Ops = []ksef.Operation{ksef.OpSessionStatus}
	})
	s := v.open(tokA)
	s.send(readSample(t, "valid", sample))
	v.settle()
	// Injected 429s on the session's status.
	for range 2 {
		resp, err := s.c.KsefSessionStatusWithResponse(context.Background(), s.id)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != http.StatusTooManyRequests {
			t.Fatalf("session status: HTTP %d, want the injected 429", resp.StatusCode())
		}
	}
	c := v.e.Collector()
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ksef_emulator_requests_total", map[string]string{"operation": string(ksef.OpSessionOpenOnline), "code": "200"}, 1},
		{"ksef_emulator_requests_total", map[string]string{"operation": string(ksef.OpInvoiceSend), "code": "200"}, 1},
		{"ksef_emulator_requests_total", map[string]string{"operation": string(ksef.OpSessionStatus), "code": "429"}, 2},
		{"ksef_emulator_throttled_total", nil, 2},
		{"ksef_emulator_faults_total", map[string]string{"kind": "429"}, 2},
		{"ksef_emulator_invoices_total", map[string]string{"status": strconv.Itoa(int(ksef.StatusAccepted))}, 1},
		{"ksef_emulator_sessions_total", nil, 1},
		{"ksef_emulator_queries_total", nil, 0},
	} {
		if got := gather(t, c, w.name, w.labels); got != w.want {
			t.Errorf("%s%v = %v, want %v (stats %+v)", w.name, w.labels, got, w.want, v.e.Stats())
		}
	}
	v.e.ResetStats()
	if got := gather(t, c, "ksef_emulator_throttled_total", nil); got != 0 {
		t.Errorf("after ResetStats: %v", got)
	}
}
