package devtls_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ksef-pipeline/ksef-pipeline/internal/devtls"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// startTLSNATS runs an in-process nats-server whose configuration file enables client TLS with
// the server files of dir, as deploy/compose/nats.conf does.
func startTLSNATS(t *testing.T, dir string) int {
	t.Helper()
	s := testenv.NATSFromConfig(t, fmt.Sprintf("listen: 127.0.0.1:-1\ntls {\n  cert_file: %q\n  key_file: %q\n}\n",
		filepath.Join(dir, devtls.ServerCert), filepath.Join(dir, devtls.ServerKey)))
	return s.Addr().(*net.TCPAddr).Port
}

// TestDevCertsRoutes: two nodes whose cluster block uses the server files for its routes, as
// deploy/k8s/base/nats.yaml does (nats-server makes both ends present and verify them), form a
// route when their certificates come from one generated CA, and do not when they come from two.
func TestDevCertsRoutes(t *testing.T) {
	one, other := t.TempDir(), t.TempDir()
	for _, d := range []string{one, other} {
		if _, err := devtls.Ensure(d, []string{"localhost"}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name         string
		first, other string
		routed       bool
	}{
		{"one CA", one, one, true},
		{"two CAs", one, other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := [2]int{freePort(t), freePort(t)}
			var nodes []*server.Server
			for i, dir := range []string{tc.first, tc.other} {
				nodes = append(nodes, testenv.NATSFromConfig(t, fmt.Sprintf(`listen: 127.0.0.1:-1
server_name: n%d
cluster {
  name: devtls
  listen: 127.0.0.1:%d
  routes: ["nats://localhost:%d"]
  tls { cert_file: %q, key_file: %q, ca_file: %q, timeout: 2 }
}
`, i, ports[i], ports[1-i], filepath.Join(dir, devtls.ServerCert), filepath.Join(dir, devtls.ServerKey), filepath.Join(dir, devtls.ServerCA))))
			}
			deadline := time.Now().Add(5 * time.Second)
			if !tc.routed {
				deadline = time.Now().Add(2 * time.Second) // several connect attempts
			}
			for time.Now().Before(deadline) && nodes[0].NumRoutes() == 0 {
				time.Sleep(50 * time.Millisecond)
			}
			if got := nodes[0].NumRoutes() > 0 && nodes[1].NumRoutes() > 0; got != tc.routed {
				t.Fatalf("routed %v (%d, %d routes), want %v", got, nodes[0].NumRoutes(), nodes[1].NumRoutes(), tc.routed)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func connect(t *testing.T, url, ca string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	nc, _, err := natsx.Connect(ctx, natsx.Config{URL: url, TLSCA: ca})
	if err != nil {
		return err
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		return fmt.Errorf("connected to %s without TLS", url)
	}
	return nc.Flush()
}

// TestDevCertsHandshake: a NATS server configured with the generated files accepts a client
// that verifies it against the generated CA under every requested name, and one that trusts
// another CA fails the handshake.
func TestDevCertsHandshake(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	now := time.Now()
	for _, d := range []string{dir, other} {
		if wrote, err := devtls.Ensure(d, []string{"nats", "localhost", "127.0.0.1"}, now); err != nil || !wrote {
			t.Fatalf("Ensure %s: wrote %v, %v", d, wrote, err)
		}
	}
	port := startTLSNATS(t, dir)
	for _, tc := range []struct {
		name, url, ca string
		ok            bool
	}{
		{"DNS name, generated CA", "tls://localhost:%d", filepath.Join(dir, devtls.ClientCA), true},
		{"IP address, generated CA", "tls://127.0.0.1:%d", filepath.Join(dir, devtls.ClientCA), true},
		{"server's copy of the CA", "tls://localhost:%d", filepath.Join(dir, devtls.ServerCA), true},
		{"another development CA", "tls://localhost:%d", filepath.Join(other, devtls.ClientCA), false},
		{"the system's CAs", "tls://localhost:%d", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := connect(t, fmt.Sprintf(tc.url, port), tc.ca)
			if (err == nil) != tc.ok {
				t.Fatalf("connect: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestEnsureKeepsOrRenews: certificates that still do are kept byte for byte; missing,
// mismatched, expiring ones or new names make a new set.
func TestEnsureKeepsOrRenews(t *testing.T) {
	hosts := []string{"nats", "localhost"}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		hosts []string
		now   time.Time
		spoil func(t *testing.T, dir string)
		wrote bool
	}{
		{"unchanged", hosts, now, nil, false},
		{"a day later", hosts, now.Add(24 * time.Hour), nil, false},
		{"hosts in another order", []string{"localhost", "nats"}, now, nil, false},
		{"a subset of the hosts", []string{"nats"}, now, nil, false},
		{"a new host", []string{"nats", "localhost", "nats.example"}, now, nil, true},
		{"a wildcard host", []string{"nats", "*.nats-headless"}, now, nil, true},
		{"close to expiry", hosts, now.Add(devtls.ServerLifetime - devtls.RenewBefore + time.Hour), nil, true},
		{"key missing", hosts, now, remove(devtls.ServerKey), true},
		{"CA missing", hosts, now, remove(devtls.ClientCA), true},
		{"key of another certificate", hosts, now, fromOtherSet(hosts, now, devtls.ServerKey), true},
		{"CA of another set", hosts, now, fromOtherSet(hosts, now, devtls.ClientCA), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := devtls.Ensure(dir, hosts, now); err != nil {
				t.Fatal(err)
			}
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			before := snapshot(t, dir)
			wrote, err := devtls.Ensure(dir, tc.hosts, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			after := snapshot(t, dir)
			if wrote != tc.wrote || (before == after) == tc.wrote {
				t.Fatalf("wrote %v (files changed: %v), want %v", wrote, before != after, tc.wrote)
			}
			if err := devtls.Check(dir, tc.hosts, tc.now.Add(devtls.RenewBefore)); err != nil {
				t.Fatalf("after Ensure: %v", err)
			}
			if fi, err := os.Stat(filepath.Join(dir, devtls.ServerKey)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v", fi.Mode(), err)
			}
		})
	}
}

func TestEnsureRefusesBadHosts(t *testing.T) {
	for _, hosts := range [][]string{nil, {""}, {"nats,localhost"}, {"a b"}} {
		if _, err := devtls.Ensure(t.TempDir(), hosts, time.Now()); err == nil {
			t.Errorf("hosts %q accepted", hosts)
		}
	}
}

// TestPrivateKeyOnlyInServerDir: the clients' directory holds the CA certificate and nothing
// else; the CA's private key is kept nowhere.
func TestPrivateKeyOnlyInServerDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := devtls.Ensure(dir, []string{"nats"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, filepath.Dir(devtls.ClientCA)))
	if err != nil || len(entries) != 1 || entries[0].Name() != filepath.Base(devtls.ClientCA) {
		t.Fatalf("client directory: %v %v", entries, err)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("PRIVATE KEY")) && !strings.HasSuffix(p, devtls.ServerKey) {
			t.Errorf("%s holds a private key", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// fromOtherSet replaces the file name with that of another generated set.
func fromOtherSet(hosts []string, now time.Time, name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		other := t.TempDir()
		if _, err := devtls.Ensure(other, hosts, now); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is the contents of every file under dir.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{devtls.ServerCert, devtls.ServerKey, devtls.ServerCA, devtls.ClientCA} {
		data, _ := os.ReadFile(filepath.Join(dir, name)) // missing: empty
		fmt.Fprintf(&b, "%s\n%s\n", name, data)
	}
	return b.String()
}
