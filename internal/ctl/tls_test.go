package ctl

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/devtls"
)

// TestTLSDevCerts: the first run writes the certificates, a second keeps them byte for byte,
// new hosts replace them; missing flags are usage errors. (The handshake: internal/devtls.)
func TestTLSDevCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Now()
	run := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		err := Run(t.Context(), append([]string{"ksefctl", "tls"}, args...), Env{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return now }})
		return out.String(), ExitCode(err)
	}
	read := func() string {
		b, err := os.ReadFile(filepath.Join(dir, devtls.ClientCA))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var ca string
	for i, tc := range []struct {
		args       []string
		code       int
		out        string
		caReplaced bool
	}{
		{[]string{"dev-certs", "--dir", dir, "--hosts", "nats, localhost"}, 0, "wrote ", true},
		{[]string{"dev-certs", "--dir", dir, "--hosts", "nats,localhost"}, 0, "kept ", false},
		{[]string{"dev-certs", "--dir", dir, "--hosts", "nats,localhost,nats.example"}, 0, "wrote ", true},
		{[]string{"dev-certs", "--hosts", "nats"}, ExitUsage, "", false},
		{[]string{"dev-certs", "--dir", dir}, ExitUsage, "", false},
		{[]string{"self-signed", "--dir", dir, "--hosts", "nats"}, ExitUsage, "", false},
	} {
		out, code := run(tc.args...)
		if code != tc.code || !strings.HasPrefix(out, tc.out) {
			t.Fatalf("%d %v: exit %d, %q; want %d, %q...", i, tc.args, code, out, tc.code, tc.out)
		}
		if code != 0 {
			continue
		}
		if now := read(); (now != ca) != tc.caReplaced {
			t.Fatalf("%d %v: CA replaced %v, want %v", i, tc.args, now != ca, tc.caReplaced)
		}
		ca = read()
		if err := devtls.Check(dir, strings.Split(strings.ReplaceAll(tc.args[4], " ", ""), ","), now); err != nil {
			t.Fatalf("%d %v: %v", i, tc.args, err)
		}
	}
}
