// Package procmem sets a worker process's Go runtime memory settings from its environment: the
// collector's GOGC, a soft memory limit from the container's limit, and heap profiling with an
// opt-in net/http/pprof server. The settings are process-wide, so only a service's main applies
// them (through pipeline.ServiceMain), once, before any work starts.
package procmem

import (
	"context"
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

const (
	// EnvMemoryLimit is the container's memory limit in bytes (Kubernetes: the downward API's
	// limits.memory, see deploy/k8s/base). Unset, the cgroup's memory.max is used.
	EnvMemoryLimit = "KSEF_MEMORY_LIMIT"
	// EnvPprofAddr serves net/http/pprof there (off by default). It also keeps heap profiling on.
	EnvPprofAddr = "KSEF_PPROF_ADDR"

	// goShare is the part of the container's limit given to Go as its soft limit: the rest is
	// the binary's pages, libxml2's C heap and the threads' stacks, which Go does not count.
	goShareNum, goShareDen = 3, 4

	cgroupMemoryMax = "/sys/fs/cgroup/memory.max" // the container's own cgroup, as mounted in it
)

// Settings are the process-wide memory settings of a worker process.
type Settings struct {
	GCPercent int   // 0: left as GOGC says
	Limit     int64 // Go's soft memory limit in bytes; 0: none (GOMEMLIMIT, if set, applies)
	Pprof     string
}

// FromEnv reads the settings; gcPercent is the service's own GOGC default (0: Go's). An explicit
// GOGC or GOMEMLIMIT in the environment wins over the service's.
func FromEnv(getenv func(string) string, readFile func(string) ([]byte, error), gcPercent int) (Settings, error) {
	m := Settings{Pprof: getenv(EnvPprofAddr)}
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

// Apply sets the runtime. Without pprof, heap profiling is off: nothing would read its samples,
// and its bucket table alone is over a megabyte.
func (m Settings) Apply() {
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

// ServePprof serves net/http/pprof on addr until shutdown is called; it returns the address
// listened on.
func ServePprof(addr string) (net.Addr, func(context.Context) error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", EnvPprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return l.Addr(), srv.Shutdown, nil
}
