package main

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestMemoryFromEnv(t *testing.T) {
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
		name     string
		env      map[string]string
		readFile func(string) ([]byte, error)
		want     memorySettings
		wantErr  bool
	}{
		{"defaults: the sender's GOGC, no limit outside a container", nil, noCgroup, memorySettings{GCPercent: gcPercent}, false},
		{"GOGC set: left to it", map[string]string{"GOGC": "200"}, noCgroup, memorySettings{}, false},
		{"pod limit from the downward API", map[string]string{EnvMemoryLimit: "536870912"}, noCgroup, memorySettings{GCPercent: gcPercent, Limit: 384 << 20}, false},
		{"pod limit wins over the cgroup", map[string]string{EnvMemoryLimit: "134217728"}, cgroup("536870912\n"), memorySettings{GCPercent: gcPercent, Limit: 96 << 20}, false},
		{"cgroup memory.max", nil, cgroup("268435456\n"), memorySettings{GCPercent: gcPercent, Limit: 192 << 20}, false},
		{"cgroup without a limit", nil, cgroup("max\n"), memorySettings{GCPercent: gcPercent}, false},
		{"cgroup not readable", nil, func(string) ([]byte, error) { return nil, errors.New("permission denied") }, memorySettings{GCPercent: gcPercent}, false},
		{"GOMEMLIMIT set: no limit of ours", map[string]string{"GOMEMLIMIT": "100MiB", EnvMemoryLimit: "536870912"}, noCgroup, memorySettings{GCPercent: gcPercent}, false},
		{"pprof", map[string]string{EnvPprofAddr: "127.0.0.1:0"}, noCgroup, memorySettings{GCPercent: gcPercent, Pprof: "127.0.0.1:0"}, false},
		{"limit not a number", map[string]string{EnvMemoryLimit: "512Mi"}, noCgroup, memorySettings{}, true},
		{"limit not positive", map[string]string{EnvMemoryLimit: "0"}, noCgroup, memorySettings{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := memoryFromEnv(func(k string) string { return tc.env[k] }, tc.readFile)
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

func TestMemorySettingsApply(t *testing.T) {
	prevRate := runtime.MemProfileRate
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.MemProfileRate = prevRate
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	})

	memorySettings{GCPercent: 50, Limit: 256 << 20}.apply()
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
	memorySettings{Pprof: "127.0.0.1:0"}.apply()
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
	addr, err := servePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET /debug/pprof/heap: %s, %d bytes", resp.Status, len(body))
	}
	if _, err := servePprof(addr.String()); err == nil {
		t.Error("a second server on the same address started")
	}
}
