package deploytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsTLSDir is where the NATS server's manifests mount the Secret nats-tls.
const natsTLSDir = "/etc/nats-tls"

// natsTestTLS writes a throwaway self-signed certificate as tls.crt, tls.key and ca.crt.
func natsTestTLS(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := writeTestTLS(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeTestTLS writes a throwaway self-signed certificate into dir as tls.crt, tls.key and
// ca.crt, the keys of the Secret nats-tls.
func writeTestTLS(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"}, DNSNames: []string{"nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, b := range map[string][]byte{"tls.crt": crt, "ca.crt": crt, "tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// checkNATSAuth: the server as configured admits no client without credentials, and clients
// and routes (in a cluster) connect over TLS.
func checkNATSAuth(p *problems, id string, opts *server.Options) {
	users := len(opts.Users) + len(opts.Nkeys)
	if users == 0 && opts.Authorization == "" && opts.Username == "" && len(opts.TrustedOperators) == 0 {
		p.addf("%s: NATS runs without authentication (no users, nkeys, token or operator)", id)
	}
	for _, u := range opts.Users {
		if u.Password == "" {
			p.addf("%s: NATS user %s has no password", id, u.Username)
		}
	}
	if opts.NoAuthUser != "" {
		p.addf("%s: no_auth_user %s lets clients in without credentials", id, opts.NoAuthUser)
	}
	if opts.TLSConfig == nil {
		p.addf("%s: NATS clients connect without TLS", id)
	}
	if (opts.Cluster.Port != 0 || len(opts.Routes) > 0) && opts.Cluster.TLSConfig == nil {
		p.addf("%s: NATS routes between the nodes without TLS", id)
	}
}
