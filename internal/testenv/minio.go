package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO credentials of the test server.
const (
	MinIOAccessKey = "ksef-test"
	MinIOSecretKey = "ksef-test-secret"
)

// EnvMinIOBin names the MinIO server binary; scripts/test.sh builds it.
const EnvMinIOBin = "KSEF_MINIO_BIN"

// minioServer is the one MinIO process of this test binary.
type minioServer struct {
	once     sync.Once
	mu       sync.Mutex
	proc     *os.Process
	done     chan struct{} // closed when proc has exited
	dir      string
	endpoint string
	err      error
	skip     string
}

// The server is per process by nature: a package-level value is the only
// place TestMain and the tests can share it.
var minio minioServer

// MinIOBin returns the configured MinIO binary path.
func MinIOBin() string {
	if p := os.Getenv(EnvMinIOBin); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ksef-pipeline", "bin", "minio")
}

// MinIO returns the endpoint (host:port, plain HTTP) and credentials of a
// MinIO server started once per test binary. Without the binary it fails
// the test when CI is set and skips it otherwise.
func MinIO(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	minio.once.Do(minio.start)
	if minio.skip != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(minio.skip)
		}
		t.Skip(minio.skip)
	}
	if minio.err != nil {
		t.Fatal(minio.err)
	}
	return minio.endpoint, MinIOAccessKey, MinIOSecretKey
}

// Main runs the tests and then stops the MinIO server if one was started.
// Use it as the body of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	StopMinIO()
	os.Exit(code)
}

// StopMinIO stops the MinIO server and removes its data. Main calls it.
func StopMinIO() {
	minio.mu.Lock()
	defer minio.mu.Unlock()
	if minio.proc != nil {
		_ = minio.proc.Kill()
		<-minio.done
		minio.proc = nil
	}
	if minio.dir != "" {
		_ = os.RemoveAll(minio.dir)
		minio.dir = ""
	}
}

func (s *minioServer) start() {
	bin := MinIOBin()
	if _, err := os.Stat(bin); err != nil {
		s.skip = fmt.Sprintf("testenv: MinIO server %s not found; run scripts/test.sh, which builds it (or set %s)", bin, EnvMinIOBin)
		return
	}
	// Two tries: the free port picked can be taken before MinIO binds it.
	for range 2 {
		if s.err = s.run(bin); s.err == nil {
			return
		}
		StopMinIO()
	}
}

func (s *minioServer) run(bin string) error {
	removeStaleDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("ksef-minio-%d-", os.Getpid()))
	if err != nil {
		return err
	}
	api, err := freePort()
	if err != nil {
		return err
	}
	console, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", api, "--console-address", console, filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+MinIOAccessKey,
		"MINIO_ROOT_PASSWORD="+MinIOSecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"HOME="+dir,
	)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Killed by the kernel if the test binary dies without calling StopMinIO.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.mu.Lock()
	s.dir = dir
	err = cmd.Start()
	done := make(chan struct{})
	if err == nil {
		s.proc, s.done = cmd.Process, done
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("testenv: start MinIO: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Serving, not just live or even "ready": MinIO has been seen to answer
	// ready and then refuse a signed call with 503 "Server not initialized
	// yet", so the gate is a signed call that succeeds.
	client, err := miniogo.New(api, &miniogo.Options{Creds: credentials.NewStaticV4(MinIOAccessKey, MinIOSecretKey, "")})
	if err != nil {
		return fmt.Errorf("testenv: MinIO client: %w", err)
	}
	for {
		if _, err := client.ListBuckets(ctx); err == nil {
			s.endpoint = api
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("testenv: MinIO exited: %s", out.String())
		case <-ctx.Done():
			return errors.New("testenv: MinIO not ready after 60s: " + out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removeStaleDirs removes data directories of test binaries that died
// without StopMinIO (killed by a timeout, say); their MinIO died with them.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ksef-minio-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "ksef-minio-%d-", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
