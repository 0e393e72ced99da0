package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// buildServices builds the services' binaries once per bench run.
func (b *Bench) buildServices(ctx context.Context) (string, error) {
	b.buildOnce.Do(func() {
		dir := filepath.Join(b.o.Dir, "bin")
		b.logf("building services/* into %s ...", dir)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./services/sender", "./services/poller",
			"./services/downloader", "./services/visualizer")
		cmd.Dir = b.o.RepoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.buildErr = fmt.Errorf("bench: building the services: %w\n%s", err, out)
		}
		b.binDir = dir
	})
	return b.binDir, b.buildErr
}

// procs are worker processes.
type procs struct {
	cmds  []*exec.Cmd
	logs  []*os.File
	names []string
	done  []chan struct{} // closed when the process has exited
	errs  []error
}

// alive returns an error naming the first process that exited (with its log's last line).
func (p *procs) alive() error {
	for i, d := range p.done {
		select {
		case <-d:
			return fmt.Errorf("bench: %s exited (%v): %s", p.names[i], p.errs[i], lastLogLine(p.logs[i].Name()))
		default:
		}
	}
	return nil
}

func lastLogLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLine(b)
}

// startServices starts replicas processes of each named worker against v.
func (b *Bench) startServices(ctx context.Context, v *env, workers []string, replicas int, extraEnv ...string) (*procs, error) {
	bin, err := b.buildServices(ctx)
	if err != nil {
		return nil, err
	}
	p := &procs{}
	for _, w := range workers {
		for i := range replicas {
			name := fmt.Sprintf("%s-%d", w, i+1)
			logf, err := os.Create(filepath.Join(v.dir, name+".log"))
			if err != nil {
				p.stop()
				return nil, err
			}
			cmd := exec.Command(filepath.Join(bin, w))
			cmd.Env = append(append(v.environ(), "KSEF_NATS_NAME="+name), extraEnv...)
			cmd.Stdout, cmd.Stderr = logf, logf
			if err := cmd.Start(); err != nil {
				logf.Close()
				p.stop()
				return nil, fmt.Errorf("bench: starting %s: %w", name, err)
			}
			done := make(chan struct{})
			i := len(p.cmds)
			p.cmds, p.logs, p.names, p.done = append(p.cmds, cmd), append(p.logs, logf), append(p.names, name), append(p.done, done)
			p.errs = append(p.errs, nil)
			go func() { p.errs[i] = cmd.Wait(); close(done) }()
		}
	}
	return p, nil
}

// stop sends SIGTERM to every process and waits for them (killing those still running after
// 20 s).
func (p *procs) stop() {
	var wg sync.WaitGroup
	for i, c := range p.cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done[i]:
			case <-time.After(20 * time.Second):
				c.Process.Kill()
				<-p.done[i]
			}
		}()
	}
	wg.Wait()
	for _, f := range p.logs {
		f.Close()
	}
}

// cpuTime is the CPU time (user + system) the processes have used so far.
func (p *procs) cpuTime() (time.Duration, error) {
	var total time.Duration
	for _, c := range p.cmds {
		d, err := procCPU(c.Process.Pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on every Linux ABI Go
// supports).
const clockTick = 10 * time.Millisecond

// procCPU reads a process's user and system time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it are counted from ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime: fields 14 and 15 of stat(5)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// selfCPU is the CPU time (user + system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is a process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	v, err := procStatus(pid, "VmHWM")
	return v << 10, err
}

// procStatus reads a number (kB for sizes) from /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		}
	}
	return 0, errors.New("bench: no " + field + " in /proc/<pid>/status")
}

// threadSampler records the most OS threads a process had (cgo calls each hold one).
type threadSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleThreads(pid int) *threadSampler {
	t := &threadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if n, err := procStatus(pid, "Threads"); err == nil && n > t.peak.Load() {
				t.peak.Store(n)
			}
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

// Stop ends the sampling and returns the peak.
func (t *threadSampler) Stop() int {
	close(t.stop)
	<-t.done
	return int(t.peak.Load())
}

// repoRoot is the directory holding go.mod, from dir upwards.
func repoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("bench: no go.mod above " + dir)
		}
	}
}
