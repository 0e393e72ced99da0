// Package testenv gives tests the repository's surroundings: the repository
// root, the shared/ directory beside it (ministry schemas and samples), an
// embedded NATS server and a real MinIO server.
//
// MinIO runs as one process per test binary. Packages that use it stop it
// at the end with
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// and, should the test binary die first, the kernel kills it too
// (parent-death signal), so no server outlives its tests.
package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RepoRoot returns the repository's root: the nearest directory above the working directory
// (a test's working directory is its package directory) whose go.mod is the main module's. The
// nested modules (deploy/deploytest, cmd/ksef-bench/chart) have go.mod files of their own.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == mainModule {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("testenv: no go.mod of %s above %s", mainModule, dir)
		}
	}
}

// mainModule is the repository's module path.
const mainModule = "github.com/ksef-pipeline/ksef-pipeline"

// modulePath is the path a go.mod's module line names.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// SharedDir returns the shared/ directory beside the repository (ministry
// documentation, schemas, samples), failing the test if it is missing.
func SharedDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(filepath.Dir(RepoRoot(t)), "shared")
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("testenv: %s is missing: tests need the shared/ directory beside the repository", d)
	}
	return d
}

// SchemaDir returns the FA(3) XSD directory in shared/.
func SchemaDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(SharedDir(t), "ksef", "official", "faktury", "schemy", "FA")
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("testenv: schema directory: %v", err)
	}
	return d
}

// NATS starts an embedded nats-server with JetStream storing in a
// temporary directory and returns it with its client URL. It is shut down
// when the test ends.
func NATS(t testing.TB) (*server.Server, string) {
	t.Helper()
	s, err := natsserver.Run(natsserver.Options{Dir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, s.ClientURL()
}

// NATSFromConfig starts an in-process nats-server from a configuration file with body, read by
// nats-server's own parser (as a deployment's server reads its file), and shuts it down when the
// test ends.
func NATSFromConfig(t testing.TB, body string) *server.Server {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("testenv: nats-server not ready after 10s")
	}
	return s
}

// JetStream starts an embedded nats-server (see NATS) and returns a JetStream client connected to
// it; the connection is closed when the test ends.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	_, url := NATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
