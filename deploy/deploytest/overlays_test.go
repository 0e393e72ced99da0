package deploytest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/natsperm"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// overlay is a deployable kustomization and what it expects the cluster
// to have already.
type overlay struct {
	name string
	// external lists objects created outside kustomize (deploy/README.md)
	// with the keys they must hold: "Secret/ksef-tokens" -> ["tokens"].
	external map[string][]string
	// inCluster: MinIO and the emulator run in the cluster.
	inCluster bool
}

// schemaKeys are the keys of the ConfigMap ksef-fa3-schemas.
var schemaKeys = []string{
	"schemat_FA3_v1-0E.xsd",
	"StrukturyDanych_v10-0E.xsd",
	"ElementarneTypyDanych_v10-0E.xsd",
	"KodyKrajow_v10-0E.xsd",
}

var overlays = []overlay{
	{
		name:      "dev",
		external:  map[string][]string{"ConfigMap/ksef-fa3-schemas": schemaKeys, "Secret/nats-tls": natsTLSKeys},
		inCluster: true,
	},
	{
		name: "prod",
		external: map[string][]string{
			"ConfigMap/ksef-fa3-schemas": schemaKeys,
			"Secret/ksef-credentials":    {"KSEF_S3_ACCESS_KEY", "KSEF_S3_SECRET_KEY"},
			"Secret/ksef-tokens":         {"tokens"},
			"Secret/nats-tls":            natsTLSKeys,
			"Secret/nats-users":          natsPasswordKeys(),
		},
	},
}

// natsTLSKeys are the keys of the Secret nats-tls (as cert-manager writes them).
var natsTLSKeys = []string{"tls.crt", "tls.key", "ca.crt"}

// natsPasswordKeys are the keys of the Secret nats-users: one password per user of
// deploy/nats/permissions.conf.
func natsPasswordKeys() []string {
	var out []string
	for _, u := range natsperm.Users("") {
		out = append(out, strings.TrimPrefix(u.Password, "$"))
	}
	return out
}

// workers are the pipeline's workers (internal/pipeline's names): the
// names of their Deployments, Services, PDBs, ScaledObjects, images and
// durable consumers.
var workers = []string{pipeline.Sender, pipeline.Poller, pipeline.Downloader, pipeline.Visualizer}

// k8sDir is deploy/k8s in the repository.
func k8sDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "deploy", "k8s")
}
