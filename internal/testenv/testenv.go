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
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/embedded/natsserver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RepoRoot returns the directory holding go.mod, searched upwards from the
// working directory (a test's working directory is its package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("testenv: no go.mod above %s", dir)
		}
	}
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
