package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunServesAndShutsDown(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# pipeline format\n5265877635=file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"ksef-emulator", "--addr", "127.0.0.1:0", "--tokens", "flag-token=6891152920", "--limits", "off", "--log-level", "warn"},
			envOf(map[string]string{"KSEF_TOKENS_FILE": tokens}), outW, io.Discard)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no start line: %v (run: %v)", err, <-done)
	}
	go io.Copy(io.Discard, outR)
	url := strings.Fields(line)[3]
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("start line %q", line)
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", http.StatusOK},
		{"/v2/public-key", "", http.StatusOK},
		{"/v2/sessions/x", "file-token", http.StatusNotFound},
		{"/v2/sessions/x", "flag-token", http.StatusNotFound},
		{"/v2/sessions/x", "other", http.StatusUnauthorized},
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
		if resp.StatusCode != c.want {
			t.Errorf("%s as %q: HTTP %d, want %d", c.path, c.token, resp.StatusCode, c.want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestFlags(t *testing.T) {
	ok := []string{"x", "--tokens", "t=5265877635"}
	o, err := parseFlags(append(ok, "--limits", "test", "--fault-ops", "ksefInvoiceSend,batchPartUpload", "--processing-delay", "0"), envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Limits.Multiplier != 10 || len(o.cfg.Faults.Ops) != 2 || o.cfg.Faults.Ops[0] != ksef.OpInvoiceSend || o.cfg.ProcessingDelay >= 0 {
		t.Errorf("config %+v", o.cfg)
	}
	o, err = parseFlags(ok, envOf(map[string]string{"KSEF_LIMITS": "off", "KSEF_SCHEMA_DIR": "/s"}), io.Discard)
	if err != nil || !o.cfg.Limits.Disabled || o.cfg.SchemaDir != "/s" {
		t.Errorf("from the environment: %v %+v", err, o.cfg.Limits)
	}
	o, err = parseFlags(append(ok, "--fault-package-fail-rate", "0.5", "--fault-package-fail-codes", "415, 500", "--fault-cancel-rate", "0.1",
		"--fault-cancel-codes", "550", "--fault-batch-open-fail-rate", "0.2", "--fault-batch-stuck-rate", "0.3", "--fault-stuck-for", "10m",
		"--fault-upload-hang-rate", "0.4", "--fault-upload-hang-for", "5s"), envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f := o.cfg.Faults
	if f.PackageFailRate != 0.5 || !slices.Equal(f.PackageFailCodes, []int{415, 500}) || f.CancelRate != 0.1 || !slices.Equal(f.CancelCodes, []int{550}) ||
		f.BatchOpenFailRate != 0.2 || f.BatchStuckRate != 0.3 || f.BatchStuckFor != 0 || f.UploadHangRate != 0.4 || f.UploadHangFor != 5*time.Second {
		t.Errorf("faults %+v", f)
	}
	o, err = parseFlags(append(ok, "--fault-hostile", "5265877635:ksefInvoiceSend:truncated-json:2, 5265877635:ksefInvoiceQueryResult:zip-bomb"), envOf(nil), io.Discard)
	if want := []emulator.Hostile{{Context: "5265877635", Op: ksef.OpInvoiceSend, Answer: "truncated-json", Times: 2},
		{Context: "5265877635", Op: ksef.OpInvoiceQueryResult, Answer: "zip-bomb"}}; err != nil || !slices.Equal(o.cfg.Faults.Hostile, want) {
		t.Errorf("--fault-hostile: %v %+v", err, o.cfg.Faults.Hostile)
	}
	// Unset, the code lists are the documented defaults.
	o, _ = parseFlags(ok, envOf(nil), io.Discard)
	if f := o.cfg.Faults; !slices.Equal(f.PackageFailCodes, []int{405, 420, 430, 435}) || !slices.Equal(f.CancelCodes, []int{405, 500, 550}) {
		t.Errorf("default codes %v %v", f.PackageFailCodes, f.CancelCodes)
	}
	for _, args := range [][]string{
		{"x"},
		append(ok, "--fault-package-fail-codes", "200"),
		append(ok, "--fault-package-fail-codes", "x"),
		append(ok, "--fault-cancel-codes", "430"),
		append(ok, "--fault-cancel-rate", "-0.1"),
		append(ok, "--fault-upload-hang-rate", "1.5"),
		append(ok, "--limits", "fast"),
		append(ok, "--fault-5xx-rate", "2"),
		append(ok, "--fault-ops", "nope"),
		append(ok, "--fault-hostile", "5265877635:ksefInvoiceSend:zip-bomb"),
		append(ok, "--fault-hostile", "5265877635:ksefInvoiceSend:teapot"),
		append(ok, "--fault-hostile", "123:ksefInvoiceSend:huge"),
		append(ok, "--fault-hostile", "5265877635:nope:huge"),
		append(ok, "--fault-hostile", "5265877635:ksefInvoiceSend:huge:x"),
		append(ok, "extra"),
		{"x", "--tokens", "secret-token=123"},
		{"x", "--tokens-file", "/nonexistent"},
	} {
		if _, err := parseFlags(args, envOf(nil), io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		} else if strings.Contains(err.Error(), "secret-token") {
			t.Errorf("%q: error shows the token: %v", args, err)
		}
	}
	var help strings.Builder
	if _, err := parseFlags([]string{"x", "-h"}, envOf(nil), &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, name := range []string{"fault-package-fail-rate", "fault-package-fail-codes", "fault-batch-open-fail-rate", "fault-cancel-rate",
		"fault-cancel-codes", "fault-batch-stuck-rate", "fault-batch-stuck-for", "fault-upload-hang-rate", "fault-upload-hang-for"} {
		if !strings.Contains(help.String(), "-"+name+" ") {
			t.Errorf("-h does not list --%s", name)
		}
	}
}
