package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// minioServer is a MinIO process of this suite that can be stopped and started again on the
// same address and data directory (testenv's server cannot), so that an outage can be staged.
type minioServer struct {
	mu       sync.Mutex
	dir      string
	endpoint string // host:port, fixed for the life of the test binary
	proc     *os.Process
	done     chan struct{}
	out      *bytes.Buffer
}

// sharedMinIO is the one MinIO of this test binary: a process is per binary by nature, and
// TestMain stops it.
var sharedMinIO minioServer

// minIO returns the running server's endpoint, starting it on first use.
func minIO(t testing.TB) string {
	t.Helper()
	bin := testenv.MinIOBin()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("MinIO server %s not found; run scripts/test.sh, which builds it (or set %s)", bin, testenv.EnvMinIOBin)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &sharedMinIO
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return s.endpoint
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "ksef-reliability-minio-")
		if err != nil {
			t.Fatal(err)
		}
		s.dir = dir
	}
	var err error
	for range 3 { // a free port can be taken before MinIO binds it
		if s.endpoint == "" {
			if s.endpoint, err = freeAddr(); err != nil {
				t.Fatal(err)
			}
		}
		if err = s.startLocked(bin); err == nil {
			return s.endpoint
		}
		s.endpoint = ""
	}
	t.Fatal(err)
	return ""
}

func (s *minioServer) startLocked(bin string) error {
	cmd := exec.Command(bin, "server", "--quiet", "--address", s.endpoint, "--console-address", "127.0.0.1:0",
		filepath.Join(s.dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+testenv.MinIOAccessKey, "MINIO_ROOT_PASSWORD="+testenv.MinIOSecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "HOME="+s.dir)
	s.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting MinIO: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.proc, s.done = cmd.Process, done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.endpoint+"/minio/health/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			s.proc = nil
			return fmt.Errorf("MinIO exited: %s", s.out.String())
		case <-ctx.Done():
			s.killLocked()
			return errors.New("MinIO not ready after a minute: " + s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *minioServer) killLocked() {
	if s.proc != nil {
		s.proc.Kill()
		<-s.done
		s.proc = nil
	}
}

// outage kills MinIO (its data stays) and returns a function that starts it again on the same
// address (it may run on any goroutine: it reports a failure with t.Errorf).
func (s *minioServer) outage(t testing.TB) (restart func()) {
	s.mu.Lock()
	s.killLocked()
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		var err error
		for range 20 { // the port may linger for a moment
			if err = s.startLocked(testenv.MinIOBin()); err == nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Errorf("restarting MinIO: %v", err)
	}
}

// stop ends the process and removes its data.
func (s *minioServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
