package node

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ctl/ctltest"
	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/events"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef"
)

// TestPublisher installs the example's locked dependencies (npm ci, with the cache outside the
// repository) in a copy of it, runs it against a whole pipeline and checks that it prints the
// KSeF number of the accepted invoice, which the pipeline's own events confirm.
func TestPublisher(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node and npm are needed to run the Node.js example (CI has them)")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "publish.mjs"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home, _ := os.UserHomeDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	install.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(home, ".cache", "ksef-pipeline", "npm"))
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}

	var log bytes.Buffer
	p, err := ctltest.Start(t.Context(), t.TempDir(), &log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("pipeline log:\n%s", log.String())
		}
	}()

	req := demo.Request(demo.Sellers[1], 4242, time.Now())
	xml, err := fa3.Generate(fa3wire.Request(req))
	if err != nil {
		t.Fatal(err)
	}
	invoice := filepath.Join(dir, "invoice.xml")
	if err := os.WriteFile(invoice, xml, 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.CommandContext(ctx, node, "publish.mjs", invoice, "--timeout", "60")
	run.Dir = dir
	run.Env = append(os.Environ(), "KSEF_NATS_URL="+p.NATSURL, "KSEF_SUBJECT_PREFIX=")
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	err = run.Run()
	t.Logf("node publish.mjs:\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatalf("the example failed: %v", err)
	}
	m := regexp.MustCompile(`accepted (\S+): ksef_number (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatal("the example printed no KSeF number")
	}
	if m[1] != req.InvoiceNumber {
		t.Errorf("invoice id %q, want the invoice number %q", m[1], req.InvoiceNumber)
	}
	if err := ksef.ValidateNumber(m[2]); err != nil {
		t.Fatalf("KSeF number %q: %v", m[2], err)
	}
	if !strings.HasPrefix(m[2], demo.Sellers[1]+"-") {
		t.Errorf("KSeF number %q is not the seller's", m[2])
	}

	// The pipeline read the example's event as its own: the same number in its invoice.accepted.
	var accepted *events.InvoiceAccepted
	err = readAll(ctx, p, func(e events.Event) {
		if a, ok := e.(*events.InvoiceAccepted); ok && a.InvoiceID == req.InvoiceNumber {
			accepted = a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if accepted == nil || accepted.KsefNumber != m[2] || accepted.ContextNIP != demo.Sellers[1] {
		t.Fatalf("invoice.accepted in the stream: %+v", accepted)
	}
}

// readAll reads every event the stream holds.
func readAll(ctx context.Context, p *ctltest.Pipeline, fn func(events.Event)) error {
	rt := p.Embedded.Runtime
	return natsx.Follow(ctx, rt.JS, rt.Settings.NATS, natsx.FollowOptions{}, func(d natsx.Delivered) error {
		if d.Event != nil {
			fn(d.Event)
		}
		return nil
	})
}
