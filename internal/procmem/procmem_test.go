package procmem

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"runtime"
	"runtime/debug"
	"testing"
)

// gcPercent is a service's own GOGC default in the tests (the sender's is 50).
const gcPercent = 50

func TestFromEnv(t *testing.T) {
	noCgroup := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	cgroup := func(v string) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			if path != cgroupMemoryMax {
				return nil, fs.ErrNotExist
			}
			return []byte(v), nil
		}
	}
	tests := []struct {
		name      string
		env       map[string]string
		gcDefault int // the service's own
		readFile  func(string) ([]byte, error)
		want      Settings
		wantErr   bool
	}{
		{"defaults: the sender's GOGC, no limit outside a container", nil, gcPercent, noCgroup, Settings{GCPercent: gcPercent}, false},
		{"GOGC set: left to it", map[string]string{"GOGC": "200"}, gcPercent, noCgroup, Settings{}, false},
		{"pod limit from the downward API", map[string]string{EnvMemoryLimit: "536870912"}, gcPercent, noCgroup, Settings{GCPercent: gcPercent, Limit: 384 << 20}, false},
		{"pod limit wins over the cgroup", map[string]string{EnvMemoryLimit: "134217728"}, gcPercent, cgroup("536870912\n"), Settings{GCPercent: gcPercent, Limit: 96 << 20}, false},
		{"cgroup memory.max", nil, gcPercent, cgroup("268435456\n"), Settings{GCPercent: gcPercent, Limit: 192 << 20}, false},
		{"cgroup without a limit", nil, gcPercent, cgroup("max\n"), Settings{GCPercent: gcPercent}, false},
		{"cgroup not readable", nil, gcPercent, func(string) ([]byte, error) { return nil, errors.New("permission denied") }, Settings{GCPercent: gcPercent}, false},
		{"GOMEMLIMIT set: no limit of ours", map[string]string{"GOMEMLIMIT": "100MiB", EnvMemoryLimit: "536870912"}, gcPercent, noCgroup, Settings{GCPercent: gcPercent}, false},
		{"pprof", map[string]string{EnvPprofAddr: "127.0.0.1:0"}, gcPercent, noCgroup, Settings{GCPercent: gcPercent, Pprof: "127.0.0.1:0"}, false},
		{"limit not a number", map[string]string{EnvMemoryLimit: "512Mi"}, gcPercent, noCgroup, Settings{}, true},
		{"a service without a GOGC of its own", nil, 0, noCgroup, Settings{}, false},
		{"limit not positive", map[string]string{EnvMemoryLimit: "0"}, gcPercent, noCgroup, Settings{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tc.env[k] }, tc.readFile, tc.gcDefault)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; settings %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	prevRate := runtime.MemProfileRate
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.MemProfileRate = prevRate
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	})

	Settings{GCPercent: 50, Limit: 256 << 20}.Apply()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("GOGC = %d, want 50", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 256<<20 {
		t.Errorf("memory limit = %d, want %d", got, 256<<20)
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("heap profiling on (rate %d) without pprof", runtime.MemProfileRate)
	}

	runtime.MemProfileRate = 512 << 10
	debug.SetMemoryLimit(1 << 40)
	Settings{Pprof: "127.0.0.1:0"}.Apply()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC = %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit = %d, want it left alone", got)
	}
	if runtime.MemProfileRate == 0 {
		t.Error("heap profiling off although pprof is served")
	}
}

func TestServePprof(t *testing.T) {
	addr, shutdown, err := ServePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET /debug/pprof/heap: %s, %d bytes", resp.Status, len(body))
	}
	if _, _, err := ServePprof(addr.String()); err == nil {
		t.Error("a second server on the same address started")
	}
}
