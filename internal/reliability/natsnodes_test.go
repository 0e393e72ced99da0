package reliability

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// envNATSNode makes the test binary run one node of a NATS cluster instead of the tests (see
// natsNodeMain): its testenv.NATSNodeConfig as JSON.
const envNATSNode = "KSEF_RELIABILITY_NATS_NODE"

// natsNodeMain runs a node (the real nats-server, embedded in this binary) until SIGTERM; SIGKILL,
// which the suite sends to lose a node, allows no goodbye: its leaderships are not handed over,
// the others elect new leaders once they stop hearing from it.
func natsNodeMain(spec string) int {
	var cfg testenv.NATSNodeConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		return 2
	}
	s, err := testenv.RunNATSNode(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats node:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// natsNodes is a JetStream cluster whose nodes run as processes of their own (the test binary
// running natsNodeMain), laid out by a testenv.NATSCluster (names, ports, store directories), so
// that a node can be killed with SIGKILL, as a lost machine is, and started again as the same
// peer.
type natsNodes struct {
	t      testing.TB
	layout *testenv.NATSCluster

	mu    sync.Mutex
	procs []*exec.Cmd
	done  []chan struct{}
	logs  []testenv.LogBuffer
}

func startNATSNodes(t testing.TB, n int) *natsNodes {
	t.Helper()
	p := &natsNodes{t: t, layout: testenv.NewNATSCluster(t, n), procs: make([]*exec.Cmd, n),
		done: make([]chan struct{}, n), logs: make([]testenv.LogBuffer, n)}
	t.Cleanup(p.stopAll)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.start(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// start runs node i (unless it runs) and waits until it accepts connections.
func (p *natsNodes) start(i int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs[i] != nil {
		return nil
	}
	spec, err := json.Marshal(p.layout.NodeConfig(i))
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envNATSNode+"="+string(spec))
	cmd.Stdout, cmd.Stderr = &p.logs[i], &p.logs[i]
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("NATS node %d: %w", i, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.layout.NodeConfig(i).ClientPort))
	for deadline := time.Now().Add(30 * time.Second); ; {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			break
		}
		select {
		case <-done:
			return fmt.Errorf("NATS node %s exited: %s", p.layout.ServerName(i), p.logs[i].String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("NATS node %s not accepting connections on %s", p.layout.ServerName(i), addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.procs[i], p.done[i] = cmd, done
	return nil
}

// kill sends node i SIGKILL and waits until it is gone.
func (p *natsNodes) kill(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs[i] == nil {
		return
	}
	p.procs[i].Process.Signal(syscall.SIGKILL)
	<-p.done[i]
	p.procs[i] = nil
}

// stop shuts node i down gracefully (SIGTERM; SIGKILL after 10 s).
func (p *natsNodes) stop(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs[i] == nil {
		return
	}
	p.procs[i].Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done[i]:
	case <-time.After(10 * time.Second):
		p.procs[i].Process.Kill()
		<-p.done[i]
	}
	p.procs[i] = nil
}

func (p *natsNodes) stopAll() {
	for i := range p.procs {
		p.stop(i)
	}
}
