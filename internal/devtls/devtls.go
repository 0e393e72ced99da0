// Package devtls makes a development certificate authority and a server certificate signed by
// it, for a NATS server that must speak TLS where no cert-manager or PKI is at hand (docker
// compose: ksefctl tls dev-certs). The layout keeps the private key apart from what clients need:
//
//	DIR/server/tls.crt, tls.key, ca.crt   the server's (the keys of a Kubernetes TLS Secret)
//	DIR/ca/ca.crt                         the CA alone, for clients (KSEF_NATS_TLS_CA)
//
// The CA's private key is not kept: nothing else can be signed with it.
package devtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files under the directory.
const (
	ServerCert = "server/tls.crt"
	ServerKey  = "server/tls.key"
	ServerCA   = "server/ca.crt"
	ClientCA   = "ca/ca.crt"
)

// Lifetimes: a development CA outlives many server certificates; a server certificate is
// replaced once less than RenewBefore of it remains.
const (
	CALifetime     = 10 * 365 * 24 * time.Hour
	ServerLifetime = 2 * 365 * 24 * time.Hour
	RenewBefore    = 30 * 24 * time.Hour
)

// Ensure makes sure dir holds a CA and a server certificate valid for every host (DNS names,
// "*.name" wildcards or IP addresses) until at least now+RenewBefore. Files that already do are
// kept, so that a restart does not change the CA the clients trust; otherwise all are written
// anew. It reports whether it wrote them.
func Ensure(dir string, hosts []string, now time.Time) (bool, error) {
	if len(hosts) == 0 {
		return false, errors.New("devtls: no hosts")
	}
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, " ,/") {
			return false, fmt.Errorf("devtls: invalid host %q", h)
		}
	}
	if err := Check(dir, hosts, now.Add(RenewBefore)); err == nil {
		return false, nil
	}
	files, err := generate(hosts, now)
	if err != nil {
		return false, err
	}
	if err := write(dir, files); err != nil {
		return false, err
	}
	return true, nil
}

// Check reports why the files in dir would not do for hosts at time at (nil: they would).
func Check(dir string, hosts []string, at time.Time) error {
	files := map[string][]byte{}
	for _, name := range []string{ClientCA, ServerCA, ServerCert, ServerKey} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("devtls: %w", err)
		}
		files[name] = b
	}
	caPEM := files[ClientCA]
	if !bytes.Equal(caPEM, files[ServerCA]) {
		return fmt.Errorf("devtls: %s and %s differ", ClientCA, ServerCA)
	}
	pair, err := tls.X509KeyPair(files[ServerCert], files[ServerKey])
	if err != nil {
		return fmt.Errorf("devtls: server certificate and key: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("devtls: %s: no PEM certificate", ClientCA)
	}
	for _, h := range hosts {
		// A wildcard is checked with a name it covers.
		name := h
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			name = "x." + rest
		}
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("devtls: server certificate for %s at %s: %w", h, at.Format(time.RFC3339), err)
		}
	}
	return nil
}

func generate(hosts []string, now time.Time) (map[string][]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devtls: CA key: %w", err)
	}
	// Backdated a little against clock skew between containers.
	start := now.Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "ksef-pipeline development CA"},
		NotBefore: start, NotAfter: now.Add(CALifetime),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devtls: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("devtls: CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devtls: server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: start, NotAfter: now.Add(ServerLifetime),
		KeyUsage: x509.KeyUsageDigitalSignature,
		// Client auth too, so that the same certificate may serve NATS routes (mutual TLS).
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("devtls: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devtls: server key: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return map[string][]byte{
		ClientCA:   caPEM,
		ServerCA:   caPEM,
		ServerCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ServerKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand does not fail
	return n.Add(n, big.NewInt(1))
}

// write puts every file in place by rename, so that a reader never sees half a file; the key is
// readable by its owner only.
func write(dir string, files map[string][]byte) error {
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("devtls: %w", err)
		}
		mode := os.FileMode(0o644)
		if name == ServerKey {
			mode = 0o600
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, mode); err != nil {
			return fmt.Errorf("devtls: %w", err)
		}
		// WriteFile keeps the mode of a file left over from an earlier attempt.
		if err := os.Chmod(tmp, mode); err != nil {
			return fmt.Errorf("devtls: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("devtls: %w", err)
		}
	}
	return nil
}
