package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ctl/ctltest"
	"github.com/ksef-pipeline/ksef-pipeline/internal/demo"
	"github.com/ksef-pipeline/ksef-pipeline/internal/fa3wire"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// The tests drive the ksefctl binary, built once, against one pipeline running in this process.
var (
	ksefctlBin string
	pipe       *ctltest.Pipeline
	workDir    string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ksefctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	ksefctlBin = filepath.Join(dir, "ksefctl")
	build := exec.Command("go", "build", "-o", ksefctlBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ksefctl:", err)
		return 1
	}
	logFile, err := os.Create(filepath.Join(dir, "pipeline.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()
	pipe, err = ctltest.Start(context.Background(), filepath.Join(dir, "pipeline"), logFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the pipeline:", err)
		return 1
	}
	code := m.Run()
	if err := pipe.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
	}
	if code != 0 {
		log, _ := os.ReadFile(logFile.Name())
		fmt.Fprintf(os.Stderr, "pipeline log:\n%s\n", log)
	}
	return code
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// baseEnv is the environment of every run: the pipeline's connection, and a home and config
// directory of the test's own (no config file unless a test writes one).
func baseEnv(t *testing.T) []string {
	home := t.TempDir()
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}, pipe.Env()...)
}

// ksefctl runs ksefctl with env (nil: baseEnv) in dir (empty: a temporary directory).
func ksefctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	if env == nil {
		env = baseEnv(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ksefctlBin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("ksefctl %v: %v", args, err)
	}
	t.Logf("ksefctl %s -> %d in %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	return r
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d", r.code, code)
	}
}

func wantContains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("output lacks %q", sub)
	}
}

var invoiceSeq atomic.Int32

// writeInvoice writes a valid FA(3) invoice from seller (one of demo.Sellers) to the demo's buyer
// as dir/name.xml, with a number no other test uses, and returns its path and bytes.
func writeInvoice(t *testing.T, dir, name, seller string) (string, []byte) {
	t.Helper()
	req := demo.Request(seller, 9000+int(invoiceSeq.Add(1)), time.Now())
	xml, err := fa3.Generate(fa3wire.Request(req))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(path, xml, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, xml
}

// writeRequest writes a generate request (structured invoice data) as dir/name.json.
func writeRequest(t *testing.T, dir, name, seller string) string {
	t.Helper()
	req := demo.Request(seller, 9000+int(invoiceSeq.Add(1)), time.Now())
	data, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sample(t *testing.T, kind, name string) string {
	t.Helper()
	root, err := ctltest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(root), "shared", "ksef", "samples", kind, name)
}

var ksefNumber = regexp.MustCompile(`\b\d{10}-\d{8}-[0-9A-F]{12}-[0-9A-F]{2}\b`)

// statusJSON is what status --output json says.
type statusJSON struct {
	ID         string   `json:"id"`
	Contexts   []string `json:"contexts"`
	State      string   `json:"state"`
	KsefNumber string   `json:"ksef_number"`
	Reason     string   `json:"reason"`
	Warnings   []string `json:"warnings"`
	Artifacts  struct {
		XML, UPO, PDF, HTML ref
		Parts               []ref
	} `json:"artifacts"`
	Events []struct {
		Seq  uint64 `json:"seq"`
		Type string `json:"type"`
	} `json:"events"`
}

type ref struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
}

func status(t *testing.T, args ...string) statusJSON {
	t.Helper()
	r := ksefctl(t, nil, append([]string{"status", "--output", "json"}, args...)...)
	wantCode(t, r, 0)
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return s
}

// eventually polls cond every 200ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
