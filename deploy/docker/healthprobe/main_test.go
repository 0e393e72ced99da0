package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestProbeURL(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
		err  bool
	}{
		{name: "default port", want: "http://127.0.0.1:9090/healthz"},
		{name: "port from KSEF_HTTP_ADDR", env: map[string]string{"KSEF_HTTP_ADDR": "0.0.0.0:9191"}, want: "http://127.0.0.1:9191/healthz"},
		{name: "env URL", env: map[string]string{"KSEF_HEALTHCHECK_URL": "http://127.0.0.1:8089/healthz", "KSEF_HTTP_ADDR": ":1"}, want: "http://127.0.0.1:8089/healthz"},
		{name: "argument wins", args: []string{"http://x/readyz"}, env: map[string]string{"KSEF_HEALTHCHECK_URL": "http://y/"}, want: "http://x/readyz"},
		{name: "bad addr", env: map[string]string{"KSEF_HTTP_ADDR": "9090"}, err: true},
		{name: "two args", args: []string{"a", "b"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := probeURL(tt.args, env(tt.env))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("url = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			io.WriteString(w, "ok")
		default:
			http.Error(w, "draining", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		ok   bool
	}{
		{name: "healthy via KSEF_HTTP_ADDR", env: map[string]string{"KSEF_HTTP_ADDR": ":" + u.Port()}, ok: true},
		{name: "unhealthy status", args: []string{srv.URL + "/readyz"}},
		{name: "nothing listening", args: []string{"http://127.0.0.1:1/healthz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(context.Background(), tt.args, env(tt.env), &out)
			if (err == nil) != tt.ok {
				t.Fatalf("run: %v, want ok %v", err, tt.ok)
			}
			if tt.ok && !strings.Contains(out.String(), "200") {
				t.Errorf("output %q does not report the status", out.String())
			}
		})
	}
}
