package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/telemetry"
)

func TestServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"ksef-emulator", "--addr", "127.0.0.1:0", "--tokens", "tok=6891152920", "--limits", "off", "--log-level", "warn"},
			envOf(nil), outW, io.Discard)
		outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v", err)
	}
	go io.Copy(io.Discard, outR)
	url := strings.Fields(line)[3]
	for _, c := range []struct{ path, token string }{
		{"/v2/public-key", ""}, {"/v2/public-key", ""}, {"/v2/sessions/x", "tok"}, {"/v2/sessions/x", "wrong"},
	} {
		req, _ := http.NewRequest(http.MethodGet, url+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	s, err := telemetry.Scrape(t.Context(), url+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"operation", "ksefPublicKey", "code", "200"}, 2},
		{[]string{"operation", "ksefSessionStatus", "code", "404"}, 1},
		{[]string{"operation", "ksefSessionStatus", "code", "401"}, 1},
	} {
		if got := s.Sum("ksef_emulator_requests_total", c.labels...); got != c.want {
			t.Errorf("requests%v = %v, want %v\n%s", c.labels, got, c.want, s)
		}
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}
