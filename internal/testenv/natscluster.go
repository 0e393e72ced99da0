package testenv

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSCluster is a JetStream cluster of real nats-server nodes inside the test process: routes
// and client ports on 127.0.0.1, file storage in the test's temporary directory. Ports and
// directories are fixed when it is made, so a node can be stopped and started again as the same
// peer, and the nodes can be started later than the clients (a cluster without a meta leader).
// Every node still running is shut down when the test ends.
type NATSCluster struct {
	t       testing.TB
	name    string
	dir     string
	clients []int
	routes  []int

	mu    sync.Mutex
	nodes []*server.Server
}

// NewNATSCluster reserves ports and directories for n nodes without starting them (Start,
// StartAll; or NodeConfig and RunNATSNode in processes of their own).
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c := &NATSCluster{t: t, name: "ksef-test", dir: t.TempDir(), nodes: make([]*server.Server, n)}
	for range n {
		c.clients = append(c.clients, freeTCPPort(t))
		c.routes = append(c.routes, freeTCPPort(t))
	}
	t.Cleanup(func() {
		for i := range n {
			c.Stop(i)
		}
	})
	return c
}

// StartNATSCluster starts an n-node cluster and waits until it has a JetStream meta leader.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c := NewNATSCluster(t, n)
	c.StartAll()
	if err := c.WaitMetaLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return port
}

// Size is the number of nodes.
func (c *NATSCluster) Size() int { return len(c.nodes) }

// ServerName is node i's server name (as JetStream's cluster info names peers).
func (c *NATSCluster) ServerName(i int) string { return fmt.Sprintf("n%d", i+1) }

// Index returns the index of the node of that server name, or -1.
func (c *NATSCluster) Index(serverName string) int {
	for i := range c.nodes {
		if c.ServerName(i) == serverName {
			return i
		}
	}
	return -1
}

// URLs are the client URLs of every node, running or not.
func (c *NATSCluster) URLs() []string {
	out := make([]string, len(c.clients))
	for i, p := range c.clients {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	return out
}

// URL is URLs joined by commas, as KSEF_NATS_URL takes them.
func (c *NATSCluster) URL() string { return strings.Join(c.URLs(), ",") }

// Node returns node i, or nil when it is not running.
func (c *NATSCluster) Node(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// StartAll starts every node that is not running, at once (each waits for its client port only:
// the cluster elects its meta leader afterwards).
func (c *NATSCluster) StartAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Start(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// NATSNodeConfig is one node of a NATSCluster: what RunNATSNode needs to start it, in this
// process or another.
type NATSNodeConfig struct {
	Name       string `json:"name"`    // server name
	Cluster    string `json:"cluster"` // cluster name
	Dir        string `json:"dir"`     // JetStream store directory
	ClientPort int    `json:"client_port"`
	RoutePort  int    `json:"route_port"`
	Routes     []int  `json:"routes"` // the other nodes' route ports
}

// NodeConfig returns node i's configuration.
func (c *NATSCluster) NodeConfig(i int) NATSNodeConfig {
	var routes []int
	for j, p := range c.routes {
		if j != i {
			routes = append(routes, p)
		}
	}
	return NATSNodeConfig{Name: c.ServerName(i), Cluster: c.name, Dir: filepath.Join(c.dir, c.ServerName(i)),
		ClientPort: c.clients[i], RoutePort: c.routes[i], Routes: routes}
}

// RunNATSNode starts a node (a real nats-server with JetStream, clustered) and waits until it
// accepts client connections; it retries for a while if its port is still held by a node that
// just stopped.
func RunNATSNode(n NATSNodeConfig) (*server.Server, error) {
	var routes []*url.URL
	for _, p := range n.Routes {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	opts := &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.ClientPort,
		JetStream:  true,
		StoreDir:   n.Dir,
		NoSigs:     true,
		NoLog:      true,
		Cluster:    server.ClusterOpts{Name: n.Cluster, Host: "127.0.0.1", Port: n.RoutePort},
		Routes:     routes,
	}
	var err error
	for range 20 {
		var s *server.Server
		if s, err = server.NewServer(opts); err != nil {
			return nil, fmt.Errorf("testenv: NATS node %s: %w", n.Name, err)
		}
		go s.Start()
		if s.ReadyForConnections(10 * time.Second) {
			return s, nil
		}
		s.Shutdown()
		s.WaitForShutdown()
		err = fmt.Errorf("testenv: NATS node %s not ready on port %d", n.Name, n.ClientPort)
		time.Sleep(250 * time.Millisecond)
	}
	return nil, err
}

// Start starts node i in this process (again, after Stop: the same peer, ports and storage)
// unless it runs.
func (c *NATSCluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i] != nil {
		return nil
	}
	s, err := RunNATSNode(c.NodeConfig(i))
	if err != nil {
		return err
	}
	c.nodes[i] = s
	return nil
}

// Stop shuts node i down (a no-op when it is not running).
func (c *NATSCluster) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// WaitMetaLeader waits until a running node says it leads the JetStream meta group and every
// running node knows it.
func (c *NATSCluster) WaitMetaLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		leaders, ready, running := 0, 0, 0
		for _, s := range c.nodes {
			if s == nil {
				continue
			}
			running++
			if s.JetStreamIsLeader() {
				leaders++
			}
			if s.JetStreamIsCurrent() {
				ready++
			}
		}
		c.mu.Unlock()
		if leaders == 1 && ready == running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: no JetStream meta leader after %v (%d of %d nodes current)", timeout, ready, running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
