package deploytest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// copyTree copies the files under src to dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// edit replaces the only occurrence of old in file with new; a test whose
// edit does not apply fails rather than passing vacuously.
func edit(t testing.TB, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s: %q occurs %d times, want once", file, old, n)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenManifestsFail breaks a copy of deploy/k8s in one way per case
// and asserts that the validation CI runs reports it.
func TestBrokenManifestsFail(t *testing.T) {
	tests := []struct {
		name     string
		overlay  string
		file     string // under deploy/k8s
		old, new string
		want     string // in the error
	}{
		{
			name: "unknown Deployment field", overlay: "dev", file: "base/sender.yaml",
			old: "  replicas: 1\n", new: "  replicaz: 1\n",
			want: `unknown field "spec.replicaz"`,
		},
		{
			name: "misspelt ScaledObject field", overlay: "prod", file: "base/keda.yaml",
			old:  "  name: poller\nspec:\n  scaleTargetRef:\n    name: poller\n  pollingInterval: 15\n",
			new:  "  name: poller\nspec:\n  scaleTargetRef:\n    name: poller\n  pollingIntervall: 15\n",
			want: `unknown field "spec.pollingIntervall"`,
		},
		{
			name: "wrong case", overlay: "dev", file: "base/nats.yaml",
			old: "  serviceName: nats-headless\n", new: "  ServiceName: nats-headless\n",
			want: `unknown field "spec.ServiceName"`,
		},
		{
			name: "number where KEDA wants a string", overlay: "dev", file: "base/keda.yaml",
			old: `lagThreshold: "100"`, new: `lagThreshold: 100`,
			want: "ScaledObject/poller",
		},
		{
			name: "no readiness probe", overlay: "dev", file: "base/poller.yaml",
			old:  "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 5\n            timeoutSeconds: 2\n            failureThreshold: 3\n",
			new:  "",
			want: "Deployment/poller container poller: liveness and readiness probes are required",
		},
		{
			name: "writable root filesystem", overlay: "prod", file: "base/visualizer.yaml",
			old: "readOnlyRootFilesystem: true", new: "readOnlyRootFilesystem: false",
			want: "readOnlyRootFilesystem must be true",
		},
		{
			name: "PDB selecting nothing", overlay: "dev", file: "base/downloader.yaml",
			old:  "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: downloader\n",
			new:  "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: downloaderz\n",
			want: "Deployment/downloader: want exactly one PodDisruptionBudget",
		},
		{
			name: "grace period shorter than the drain", overlay: "dev", file: "base/sender.yaml",
			old: "terminationGracePeriodSeconds: 90", new: "terminationGracePeriodSeconds: 30",
			want: "Deployment/sender: drain timeout 1m0s",
		},
		{
			name: "unknown NATS setting", overlay: "prod", file: "base/nats.yaml",
			old: "    listen: 0.0.0.0:4222\n", new: "    listn: 0.0.0.0:4222\n",
			want: `unknown field "listn"`,
		},
		{
			name: "JetStream store larger than its volume", overlay: "dev", file: "overlays/dev/kustomization.yaml",
			old: "max_file_store: 768MB", new: "max_file_store: 4GB",
			want: "max_file_store",
		},
		{
			name: "KEDA watching another consumer", overlay: "dev", file: "base/keda.yaml",
			old: "consumer: downloader", new: "consumer: downloaders",
			want: `consumer "downloaders"`,
		},
		{
			name: "S3 endpoint with a scheme", overlay: "prod", file: "overlays/prod/kustomization.yaml",
			old: "KSEF_S3_ENDPOINT=s3.eu-central-1.amazonaws.com", new: "KSEF_S3_ENDPOINT=https://s3.eu-central-1.amazonaws.com",
			want: "without a scheme",
		},
		{
			name: "production pointed at the emulator", overlay: "prod", file: "overlays/prod/kustomization.yaml",
			old: "KSEF_API_URL=https://api.ksef.mf.gov.pl", new: "KSEF_API_URL=http://ksef-emulator:8089",
			want: "ksef-emulator names no Service",
		},
		{
			name: "DNS blocked", overlay: "dev", file: "base/networkpolicies.yaml",
			old: "        - protocol: UDP\n          port: 53\n", new: "        - protocol: UDP\n          port: 54\n",
			want: "kube-dns:53/UDP (DNS) is blocked",
		},
		{
			name: "workers cut off from MinIO", overlay: "dev", file: "components/minio/minio.yaml",
			old: "values: [worker, storage]", new: "values: [storage]",
			want: "(S3 (KSEF_S3_ENDPOINT)) is blocked",
		},
		{
			name: "secret missing", overlay: "dev", file: "overlays/dev/kustomization.yaml",
			old: "  - name: ksef-tokens\n", new: "  - name: ksef-tokenz\n",
			want: "Secret/ksef-tokens neither rendered nor documented as external",
		},
		{
			name: "NATS without users", overlay: "prod", file: "base/nats.yaml",
			old: "    include ./permissions.conf\n", new: "",
			want: "NATS runs without authentication",
		},
		{
			name: "NATS without TLS", overlay: "dev", file: "base/nats.yaml",
			old: "    tls {\n      cert_file: /etc/nats-tls/tls.crt\n      key_file: /etc/nats-tls/tls.key\n      ca_file: /etc/nats-tls/ca.crt\n      timeout: 5\n    }\n", new: "",
			want: "NATS clients connect without TLS",
		},
		{
			name: "NATS routes without TLS", overlay: "prod", file: "base/nats.yaml",
			old: "      tls {\n        cert_file: /etc/nats-tls/tls.crt\n        key_file: /etc/nats-tls/tls.key\n        ca_file: /etc/nats-tls/ca.crt\n        timeout: 5\n      }\n", new: "",
			want: "NATS routes between the nodes without TLS",
		},
		{
			name: "worker as another NATS user", overlay: "prod", file: "base/poller.yaml",
			old: "              value: poller\n", new: "              value: sender\n",
			want: "Deployment/poller: NATS user \"sender\"",
		},
		{
			name: "worker creating its own stream", overlay: "prod", file: "base/kustomization.yaml",
			old: "      - KSEF_NATS_PROVISIONED=true\n", new: "",
			want: "KSEF_NATS_PROVISIONED is not true",
		},
		{
			name: "tokens mounted in the visualizer", overlay: "prod", file: "base/visualizer.yaml",
			old:  "        - name: tmp\n          emptyDir:\n",
			new:  "        - name: tokens\n          secret:\n            secretName: ksef-tokens\n        - name: tmp\n          emptyDir:\n",
			want: "Deployment/visualizer: mounts Secret ksef-tokens",
		},
		{
			name: "tokens file given to the visualizer", overlay: "prod", file: "base/visualizer.yaml",
			old: "          env:\n", new: "          env:\n            - name: KSEF_TOKENS_FILE\n              value: /var/run/secrets/ksef/tokens\n",
			want: "Deployment/visualizer: KSEF_TOKENS_FILE set",
		},
		{
			name: "latest image", overlay: "prod", file: "overlays/prod/kustomization.yaml",
			old: "    newName: ghcr.io/ksef-pipeline/poller\n    newTag: 0.1.0\n", new: "    newName: ghcr.io/ksef-pipeline/poller\n    newTag: latest\n",
			want: "must have a tag other than latest",
		},
	}
	src := k8sDir(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, src, root)
			o := overlayNamed(t, tt.overlay)
			if err := validate(t, root, o); err != nil {
				t.Fatalf("the unbroken copy fails: %v", err)
			}
			edit(t, filepath.Join(root, tt.file), tt.old, tt.new)
			err := validate(t, root, o)
			if err == nil {
				t.Fatal("validation passed a broken manifest")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

func overlayNamed(t testing.TB, name string) overlay {
	t.Helper()
	for _, o := range overlays {
		if o.name == name {
			return o
		}
	}
	t.Fatalf("no overlay %s", name)
	return overlay{}
}

// TestBrokenComposeFails does the same for docker-compose.yml.
func TestBrokenComposeFails(t *testing.T) {
	tests := []struct {
		name     string
		file     string // the file edited; "" is docker-compose.yml
		old, new string
		want     string
	}{
		{
			name: "unknown key", old: "  stop_grace_period: 90s\n", new: "  stop_grace_periode: 90s\n",
			want: "stop_grace_periode",
		},
		{
			name: "invalid depends_on condition", old: "    ksef-emulator:\n      condition: service_healthy\n",
			new:  "    ksef-emulator:\n      condition: service_healty\n",
			want: "condition value must be one of",
		},
		{
			name: "dependency without healthcheck",
			old:  "    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8222/healthz?js-enabled-only=true\"]\n      interval: 5s\n      timeout: 3s\n      retries: 12\n",
			new:  "",
			want: "waits for nats to be healthy, which has no healthcheck",
		},
		{
			name: "S3 endpoint with a scheme", old: "KSEF_S3_ENDPOINT: minio:9000", new: "KSEF_S3_ENDPOINT: http://minio:9000",
			want: "without a scheme",
		},
		{
			name: "AckWait (the default drain) beyond stop_grace_period", old: "  KSEF_DRAIN_TIMEOUT: 60s\n",
			new:  "  KSEF_DRAIN_TIMEOUT: 60s\n  KSEF_ACK_WAIT: 2m\n",
			want: "drain timeout 2m0s",
		},
		{
			name: "bucket not created", old: "ksef-upo ksef-query-parts", new: "ksef-query-parts",
			want: "bucket ksef-upo",
		},
		{
			name: "NATS without its configuration", old: `["-c", "/etc/nats/nats.conf", "-js"`, new: `["-js"`,
			want: "nats: no configuration file (-c): NATS runs without authentication",
		},
		{
			name: "NATS configuration without users", old: "      - ./deploy/nats/permissions.conf:/etc/nats/permissions.conf:ro\n",
			new:  "",
			want: "nats: /etc/nats/nats.conf",
		},
		{
			name: "NATS without TLS", file: "deploy/compose/nats.conf",
			old: "tls {\n  cert_file: /etc/nats-tls/tls.crt\n  key_file: /etc/nats-tls/tls.key\n  timeout: 5\n}", new: "",
			want: "nats: NATS clients connect without TLS",
		},
		{
			name: "NATS before its certificates", old: "    depends_on:\n      nats-certs:\n        condition: service_completed_successfully\n",
			new:  "",
			want: "nats: must depend on nats-certs",
		},
		{
			name: "certificates for another name", old: `"--hosts", "nats,localhost,127.0.0.1"`, new: `"--hosts", "localhost"`,
			want: "sender: NATS host nats is not one of the certificate's",
		},
		{
			name: "workers over plain NATS", old: "\n  KSEF_NATS_URL: tls://nats:4222\n", new: "\n  KSEF_NATS_URL: nats://nats:4222\n",
			want: "sender: KSEF_NATS_URL \"nats://nats:4222\" is not tls://",
		},
		{
			name: "provisioning without the CA", old: "      KSEF_NATS_TLS_CA: /etc/nats-tls/ca.crt\n", new: "",
			want: "nats-provision: KSEF_NATS_TLS_CA not set",
		},
		{
			name: "workers given the server's key", old: "  volume:\n    subpath: ca\n", new: "  volume:\n    subpath: server\n",
			want: "visualizer: KSEF_NATS_TLS_CA /etc/nats-tls/ca.crt is not ca.crt of volume nats-tls's ca directory",
		},
		{
			name: "worker as the admin", old: "      KSEF_NATS_USER: sender\n", new: "      KSEF_NATS_USER: admin\n",
			want: "sender: NATS user \"admin\"",
		},
		{
			name: "tokens given to the visualizer", old: "    image: ksef-pipeline/visualizer:dev\n",
			new:  "    image: ksef-pipeline/visualizer:dev\n    secrets: [ksef_tokens]\n",
			want: "visualizer: mounts Secret ksef-tokens",
		},
		{
			name: "malformed tokens file", old: "file: ${KSEF_TOKENS_HOST_FILE:-./deploy/compose/dev-tokens.txt}",
			new:  "file: ${KSEF_TOKENS_HOST_FILE:-./docker-compose.yml}",
			want: "settings (pipeline.SettingsFromEnv)",
		},
	}
	root := testenv.RepoRoot(t)
	services := dockerfileServices(t, root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, filepath.Join(root, "deploy", "compose"), filepath.Join(dir, "deploy", "compose"))
			copyTree(t, filepath.Join(root, "deploy", "nats"), filepath.Join(dir, "deploy", "nats"))
			file := filepath.Join(dir, "docker-compose.yml")
			b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := validateCompose(t.Context(), file, services); err != nil {
				t.Fatalf("the unbroken copy fails: %v", err)
			}
			edited := file
			if tt.file != "" {
				edited = filepath.Join(dir, tt.file)
			}
			edit(t, edited, tt.old, tt.new)
			err = validateCompose(t.Context(), file, services)
			if err == nil {
				t.Fatal("validation passed a broken compose file")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}
