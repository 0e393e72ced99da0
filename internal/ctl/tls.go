package ctl

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/internal/devtls"
)

const tlsHelp = `
tls dev-certs: makes, in --dir, a development CA and a server certificate for --hosts (DNS
names, *.wildcards or IP addresses; the first is the subject), for a NATS server that must speak
TLS without a PKI (docker compose runs it before NATS):

  DIR/server/tls.crt, tls.key, ca.crt   the server's (tls.key readable by its owner only)
  DIR/ca/ca.crt                         the CA alone, for clients (KSEF_NATS_TLS_CA)

The CA's private key is not kept. Idempotent: files that are valid for every host for at least
30 more days are kept, so that the CA the clients trust does not change; otherwise all are made
anew. Not for production: use the installation's PKI or cert-manager there.`

func runTLS(_ context.Context, o *options, args []string) error {
	c, _ := findCommand("tls")
	var dir, hosts string
	fs := o.flagSet(c.name, func(fs *flag.FlagSet) {
		fs.StringVar(&dir, "dir", "", "`directory` for the certificates (made if missing)")
		fs.StringVar(&hosts, "hosts", "", "comma-separated `names` the server certificate is valid for")
	})
	rest, err := o.parse(c, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(rest) != 1 || rest[0] != "dev-certs" {
		return usagef("tls: want dev-certs")
	}
	if dir == "" || hosts == "" {
		return usagef("tls dev-certs: --dir and --hosts are required")
	}
	list := strings.Split(hosts, ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	wrote, err := devtls.Ensure(dir, list, o.env.Now())
	if err != nil {
		return failedf("tls dev-certs: %w", err)
	}
	verb := "kept"
	if wrote {
		verb = "wrote"
	}
	fmt.Fprintf(o.env.Stdout, "%s %s and %s for %s\n", verb, filepath.Join(dir, devtls.ServerCert), filepath.Join(dir, devtls.ClientCA), strings.Join(list, ", "))
	return nil
}
