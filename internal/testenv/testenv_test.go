package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "testenv.go")); err != nil {
		t.Fatalf("root %s is not this repository: %v", root, err)
	}
}

func TestSchemaDir(t *testing.T) {
	d := SchemaDir(t)
	matches, _ := filepath.Glob(filepath.Join(d, "*.xsd"))
	if len(matches) == 0 {
		t.Fatalf("no XSD in %s", d)
	}
}

// TestJetStream: the embedded server (NATS) has JetStream on, and the client reaches it.
func TestJetStream(t *testing.T) {
	js := JetStream(t)
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}

func TestMinIO(t *testing.T) {
	endpoint, _, _ := MinIO(t)
	// A second call returns the same server.
	if again, _, _ := MinIO(t); again != endpoint {
		t.Fatalf("second server %s, first %s", again, endpoint)
	}
	resp, err := http.Get("http://" + endpoint + "/minio/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %s", resp.Status)
	}
}

func TestRemoveStaleDirs(t *testing.T) {
	// A pid that cannot exist (above the kernel's pid_max limit of 2^22).
	stale, err := os.MkdirTemp("", "ksef-minio-9999999-")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := os.MkdirTemp("", fmt.Sprintf("ksef-minio-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(mine)
	removeStaleDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		os.RemoveAll(stale)
		t.Fatalf("stale directory kept: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("own directory removed: %v", err)
	}
}

func TestModulePath(t *testing.T) {
	for gomod, want := range map[string]string{
		"module github.com/ksef-pipeline/ksef-pipeline\n\ngo 1.26.8\n":                 mainModule,
		"// nested\nmodule github.com/ksef-pipeline/ksef-pipeline/deploy/deploytest\n": mainModule + "/deploy/deploytest",
		"module \"quoted/path\"\n": "quoted/path",
		"go 1.26\n":                "",
	} {
		if got := modulePath([]byte(gomod)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", gomod, got, want)
		}
	}
}
