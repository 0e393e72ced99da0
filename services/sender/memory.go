package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// The sender's own runtime settings, applied before any work starts.
const (
	// EnvMemoryLimit is the container's memory limit in bytes (Kubernetes: the downward API's
	// limits.memory, see deploy/k8s/base/sender.yaml). Unset, the cgroup's memory.max is used.
	EnvMemoryLimit = "KSEF_MEMORY_LIMIT"
	// EnvPprofAddr serves net/http/pprof there (off by default). It also keeps heap profiling on.
	EnvPprofAddr = "KSEF_PPROF_ADDR"

	// gcPercent is the sender's default GOGC. Its heap is mostly invoice bytes: documents held
	// within the memory budget and, while one is sent, its encrypted, base64 and JSON copies.
	// They are large, short-lived and pointer-free, so a collection costs little, while Go's
	// default of 100 lets the heap grow to twice whatever was live at the last collection: a
	// burst of sends then doubles into the peak. 50 cut the peak RSS of the 100 MB batch
	// benchmark by 12 MiB for about 2% more CPU in the collector.
	gcPercent = 50
	// goShare is the part of the container's limit given to Go as its soft limit: the rest is
	// the binary's pages, libxml2's C heap and the threads' stacks, which Go does not count.
	goShareNum, goShareDen = 3, 4

	cgroupMemoryMax = "/sys/fs/cgroup/memory.max" // the container's own cgroup, as mounted in it
)

// memorySettings are the process-wide memory settings of the sender.
type memorySettings struct {
	GCPercent int   // 0: left as GOGC says
	Limit     int64 // Go's soft memory limit in bytes; 0: none (GOMEMLIMIT, if set, applies)
	Pprof     string
}

// memoryFromEnv reads the settings. An explicit GOGC or GOMEMLIMIT wins over the sender's own.
func memoryFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (memorySettings, error) {
	m := memorySettings{Pprof: getenv(EnvPprofAddr)}
	if getenv("GOGC") == "" {
		m.GCPercent = gcPercent
	}
	if getenv("GOMEMLIMIT") != "" {
		return m, nil
	}
	limit, err := containerLimit(getenv, readFile)
	if err != nil {
		return m, err
	}
	m.Limit = limit / goShareDen * goShareNum
	return m, nil
}

// containerLimit is the memory limit the process runs under: KSEF_MEMORY_LIMIT, else the cgroup
// v2 memory.max of the container; 0 when there is none.
func containerLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (int64, error) {
	if v := getenv(EnvMemoryLimit); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s: want a positive number of bytes, got %q", EnvMemoryLimit, v)
		}
		return n, nil
	}
	b, err := readFile(cgroupMemoryMax)
	if err != nil {
		return 0, nil // not in a cgroup v2 container, or not readable: no limit known
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // "max": none
	if err != nil || n <= 0 {
		return 0, nil
	}
	return n, nil
}

// apply sets the runtime. Without pprof, heap profiling is off: nothing would read its samples,
// and its bucket table alone is over a megabyte.
func (m memorySettings) apply() {
	if m.Pprof == "" {
		runtime.MemProfileRate = 0
	}
	if m.GCPercent > 0 {
		debug.SetGCPercent(m.GCPercent)
	}
	if m.Limit > 0 {
		debug.SetMemoryLimit(m.Limit)
	}
}

// servePprof serves net/http/pprof on addr until the process ends; it returns the address
// listened on.
func servePprof(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvPprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return l.Addr(), nil
}
