package deploytest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/ksef-pipeline/ksef-pipeline/internal/devtls"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/internal/testenv"
)

// loadCompose loads a compose file as docker compose would, with the
// Compose Specification's JSON schema validation, interpolation (with an
// empty environment, so the file's defaults apply) and consistency checks.
func loadCompose(ctx context.Context, file string) (*types.Project, error) {
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: types.Mapping{},
	})
}

// Services docker-compose.yml must define.
var (
	composeInfra = []string{"nats", "nats-certs", "nats-provision", "minio", "minio-buckets", "ksef-emulator"}
	// composeOneShot run to completion; others run and have healthchecks.
	composeOneShot = []string{"minio-buckets", "nats-certs", "nats-provision"}
	// workerNeeds is what each worker waits for, and how.
	workerNeeds = map[string]string{
		"nats":          types.ServiceConditionHealthy,
		"minio":         types.ServiceConditionHealthy,
		"minio-buckets": types.ServiceConditionCompletedSuccessfully,
		"ksef-emulator": types.ServiceConditionHealthy,
		// The workers' NATS users may not create the stream or their consumers.
		"nats-provision": types.ServiceConditionCompletedSuccessfully,
	}
)

// validateCompose loads the compose file and checks what `docker compose
// up` relies on. dockerfileServices are the SERVICE values the Dockerfile
// builds.
func validateCompose(ctx context.Context, file string, dockerfileServices []string) error {
	proj, err := loadCompose(ctx, file)
	if err != nil {
		return err
	}
	var p problems
	for _, name := range append(slices.Clone(composeInfra), workers...) {
		if _, ok := proj.Services[name]; !ok {
			p.addf("service %s missing", name)
		}
	}
	for _, name := range sortedKeys(proj.Services) {
		checkComposeService(&p, proj, name, dockerfileServices)
	}
	for _, name := range workers {
		if s, ok := proj.Services[name]; ok {
			checkComposeWorker(&p, proj, s)
		}
	}
	if s, ok := proj.Services["minio-buckets"]; ok {
		script := strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " ")
		if !strings.Contains(script, "mc mb") {
			p.addf("minio-buckets: does not run mc mb")
		}
		for _, b := range storage.DefaultBuckets().All() {
			if !strings.Contains(script, b) {
				p.addf("minio-buckets: bucket %s (storage.DefaultBuckets) not created", b)
			}
		}
	}
	if s, ok := proj.Services["nats"]; ok {
		checkComposeNATS(&p, s)
		checkComposeNATSTLS(&p, proj)
	}
	return p.err()
}

func checkComposeService(p *problems, proj *types.Project, name string, dockerfileServices []string) {
	s := proj.Services[name]
	oneShot := slices.Contains(composeOneShot, name)
	switch {
	case oneShot && s.Restart != "" && s.Restart != types.RestartPolicyNo:
		p.addf("%s: a one-shot service must not restart (restart %q)", name, s.Restart)
	case !oneShot && (s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0):
		p.addf("%s: healthcheck required", name)
	case !oneShot && s.Restart == "":
		p.addf("%s: restart policy required", name)
	}
	if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image[strings.LastIndex(s.Image, "/")+1:], ":") {
		p.addf("%s: image %q must have a tag other than latest", name, s.Image)
	}
	for dep, d := range s.DependsOn {
		target, ok := proj.Services[dep]
		if !ok {
			p.addf("%s: depends on unknown service %s", name, dep)
			continue
		}
		switch d.Condition {
		case types.ServiceConditionHealthy:
			if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
				p.addf("%s: waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		case types.ServiceConditionCompletedSuccessfully:
			if !slices.Contains(composeOneShot, dep) {
				p.addf("%s: waits for %s to complete, which is not a one-shot service", name, dep)
			}
		default:
			p.addf("%s: depends on %s with condition %q; use service_healthy or service_completed_successfully", name, dep, d.Condition)
		}
	}
	if s.Build == nil {
		return
	}
	// Our images: hardened as in Kubernetes.
	svc := s.Build.Args["SERVICE"]
	switch {
	case svc == nil || !slices.Contains(dockerfileServices, *svc):
		p.addf("%s: build arg SERVICE %v is not one the Dockerfile builds %v", name, svc, dockerfileServices)
	case !strings.HasPrefix(s.Image, "ksef-pipeline/"+*svc+":"):
		p.addf("%s: image %s is not ksef-pipeline/%s:<tag>", name, s.Image, *svc)
	}
	if filepath.Clean(s.Build.Context) != filepath.Clean(proj.WorkingDir) {
		p.addf("%s: build context %s is not the repository root", name, s.Build.Context)
	}
	if s.User != "65532:65532" {
		p.addf("%s: user %q, want 65532:65532 (the image's non-root user)", name, s.User)
	}
	if !s.ReadOnly {
		p.addf("%s: read_only root filesystem required", name)
	}
	if !slices.Contains(s.CapDrop, "ALL") {
		p.addf("%s: cap_drop ALL required", name)
	}
	if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		p.addf("%s: security_opt no-new-privileges:true required", name)
	}
	if !slices.Contains(s.Tmpfs, "/tmp") {
		p.addf("%s: /tmp must be a tmpfs (read-only root)", name)
	}
	if hc := s.HealthCheck; hc != nil && (len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != healthprobePath) {
		p.addf("%s: healthcheck %v must run %s (the image has no shell)", name, hc.Test, healthprobePath)
	}
}

// healthprobePath is where the Dockerfile puts deploy/docker/healthprobe.
const healthprobePath = "/usr/local/bin/healthprobe"

func checkComposeWorker(p *problems, proj *types.Project, s types.ServiceConfig) {
	name := s.Name
	for dep, cond := range workerNeeds {
		if d, ok := s.DependsOn[dep]; !ok || d.Condition != cond {
			p.addf("%s: must depend on %s with condition %s", name, dep, cond)
		}
	}
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	for _, k := range settingsFor(name) {
		if _, ok := env[k]; !ok {
			p.addf("%s: %s not set", name, k)
		}
	}
	// The pipeline's own parser, reading the tokens from the compose
	// secret's file as the container would at /run/secrets.
	readFile := func(file string) ([]byte, error) {
		secret, ok := strings.CutPrefix(file, "/run/secrets/")
		if sec, found := proj.Secrets[secret]; ok && found && sec.File != "" {
			return os.ReadFile(sec.File)
		}
		return nil, fmt.Errorf("%s: %w", file, os.ErrNotExist)
	}
	ps, err := pipeline.SettingsFromEnv(func(k string) string { return env[k] }, readFile)
	var secrets []string
	for _, r := range s.Secrets {
		secrets = append(secrets, r.Source)
	}
	if slices.Contains(secrets, "ksef_tokens") {
		secrets = append(secrets, "ksef-tokens") // the same Secret, as checkTokens names it
	}
	tokens := len(ps.KSeF.Tokens)
	if err != nil {
		tokens = -1 // unknown, reported below
	}
	checkTokens(p, name, name, env, tokens, secrets)
	if env[natsx.EnvUser] != name || env[natsx.EnvPassword] == "" {
		p.addf("%s: NATS user %q (with a password: %v), want its own user %s", name, env[natsx.EnvUser], env[natsx.EnvPassword] != "", name)
	}
	if err == nil && !ps.NATS.Provisioned {
		p.addf("%s: %s is not true: its NATS user may not create the stream or consumers", name, natsx.EnvProvisioned)
	}
	if err != nil {
		p.addf("%s: settings (pipeline.SettingsFromEnv): %v", name, err)
	} else {
		if ps.Storage.Backend != "s3" {
			p.addf("%s: storage backend %q, want s3", name, ps.Storage.Backend)
		}
		composeEndpoint(p, proj, name, "KSEF_NATS_URL", ps.NATS.URL)
		composeEndpoint(p, proj, name, "KSEF_S3_ENDPOINT", s3URL(ps.Storage.S3))
		composeEndpoint(p, proj, name, "KSEF_API_URL", ps.KSeF.APIURL)
	}

	if drain, err := drainTimeout(env, ps); err != nil || s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < drain+drainMargin {
		p.addf("%s: stop_grace_period must exceed the drain timeout %s (%v) by %s", name, drain, err, drainMargin)
	}
	if _, port, err := net.SplitHostPort(env["KSEF_HTTP_ADDR"]); err != nil {
		p.addf("%s: KSEF_HTTP_ADDR %q: %v", name, env["KSEF_HTTP_ADDR"], err)
	} else if hc := s.HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "127.0.0.1:"+port+"/") {
		p.addf("%s: healthcheck does not probe the health port %s", name, port)
	}

	// The tokens file is a compose secret (of the workers that call KSeF; checkTokens made sure
	// the others have none); the schemas a read-only mount.
	if pipeline.CallsKSeF(name) {
		secret, ok := strings.CutPrefix(env["KSEF_TOKENS_FILE"], "/run/secrets/")
		if !ok || !slices.ContainsFunc(s.Secrets, func(r types.ServiceSecretConfig) bool {
			return r.Source == secret && (r.Target == "" || r.Target == secret || r.Target == "/run/secrets/"+secret)
		}) {
			p.addf("%s: KSEF_TOKENS_FILE %q is not one of its secrets", name, env["KSEF_TOKENS_FILE"])
		} else if sec, ok := proj.Secrets[secret]; !ok || sec.File == "" {
			p.addf("%s: secret %s has no file", name, secret)
		}
	}
	if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == env["KSEF_SCHEMA_DIR"] && v.ReadOnly
	}) {
		p.addf("%s: KSEF_SCHEMA_DIR %q is not a read-only mount", name, env["KSEF_SCHEMA_DIR"])
	}
}

// composeEndpoint: the URL's host is a service of the project.
func composeEndpoint(p *problems, proj *types.Project, name, setting, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		p.addf("%s: %s %q is not a URL", name, setting, raw)
		return
	}
	if _, ok := proj.Services[u.Hostname()]; !ok {
		p.addf("%s: %s host %s is not a service", name, setting, u.Hostname())
	}
}

// checkComposeNATS: JetStream on, its store on a volume, monitoring on the
// port the healthcheck asks.
func checkComposeNATS(p *problems, s types.ServiceConfig) {
	args := []string(s.Command)
	checkComposeNATSAuth(p, s)
	if !slices.Contains(args, "-js") {
		p.addf("nats: JetStream (-js) is off")
	}
	if i := slices.Index(args, "-sd"); i < 0 || i+1 >= len(args) ||
		!slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Target == args[i+1] && v.Type == types.VolumeTypeVolume
		}) {
		p.addf("nats: the JetStream store (-sd) must be on a named volume")
	}
	if i := slices.Index(args, "-m"); i < 0 || i+1 >= len(args) || s.HealthCheck == nil ||
		!strings.Contains(strings.Join(s.HealthCheck.Test, " "), ":"+args[i+1]+"/healthz") {
		p.addf("nats: the healthcheck must ask the monitoring port (-m) /healthz")
	}
}

func TestComposeValid(t *testing.T) {
	root := testenv.RepoRoot(t)
	if err := validateCompose(t.Context(), filepath.Join(root, "docker-compose.yml"), dockerfileServices(t, root)); err != nil {
		t.Errorf("docker-compose.yml:\n%v", err)
	}
}

// checkComposeNATSAuth: the server reads a configuration file (-c) whose users, with passwords
// from the service's environment, admit no client without credentials, and which speaks TLS to
// clients; the files are the host files the service mounts, the certificates (a volume nats-certs
// fills) a test certificate in their place.
func checkComposeNATSAuth(p *problems, s types.ServiceConfig) {
	args := []string(s.Command)
	i := slices.Index(args, "-c")
	if i < 0 || i+1 >= len(args) {
		p.addf("nats: no configuration file (-c): NATS runs without authentication")
		return
	}
	conf := args[i+1]
	dir, err := os.MkdirTemp("", "compose-nats")
	if err != nil {
		p.addf("nats: %v", err)
		return
	}
	defer os.RemoveAll(dir)
	tlsDir := filepath.Join(dir, "tls")
	if err := writeTestTLS(tlsDir); err != nil {
		p.addf("nats: %v", err)
		return
	}
	found := false
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind || path.Dir(v.Target) != path.Dir(conf) {
			continue
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			p.addf("nats: mounted %s: %v", v.Source, err)
			return
		}
		b = []byte(strings.ReplaceAll(string(b), natsTLSDir+"/", tlsDir+"/"))
		if err := os.WriteFile(filepath.Join(dir, path.Base(v.Target)), b, 0o600); err != nil {
			p.addf("nats: %v", err)
			return
		}
		found = found || v.Target == conf
	}
	if !found {
		p.addf("nats: %s is not a mounted file", conf)
		return
	}
	for k, v := range s.Environment {
		if v != nil {
			os.Setenv(k, *v)
			defer os.Unsetenv(k)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, path.Base(conf)))
	if err != nil {
		p.addf("nats: %s: %v", conf, err)
		return
	}
	checkNATSAuth(p, "nats", opts)
	for _, u := range opts.Users {
		if strings.HasPrefix(u.Password, "$") {
			p.addf("nats: NATS user %s has no password (%s unset)", u.Username, u.Password)
		}
	}
}

// checkComposeNATSTLS: nats-certs writes the certificates (ksefctl tls dev-certs) into a volume
// before NATS starts, for the name the clients use; NATS mounts its server/ directory at
// natsTLSDir; every service that connects to NATS does so over TLS and verifies the server with
// the CA from the volume's ca/ directory, which holds no private key.
func checkComposeNATSTLS(p *problems, proj *types.Project) {
	certs, ok := proj.Services["nats-certs"]
	if !ok {
		return // reported as missing
	}
	args := []string(certs.Command)
	flagValue := func(name string) string {
		if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
			return args[i+1]
		}
		return ""
	}
	dir, hosts := flagValue("--dir"), strings.Split(flagValue("--hosts"), ",")
	if !slices.Equal(args[:min(2, len(args))], []string{"tls", "dev-certs"}) || dir == "" {
		p.addf("nats-certs: command %v is not ksefctl tls dev-certs --dir DIR --hosts ...", args)
		return
	}
	volume := ""
	for _, v := range certs.Volumes {
		if v.Type == types.VolumeTypeVolume && path.Clean(v.Target) == path.Clean(dir) && !v.ReadOnly {
			volume = v.Source
		}
	}
	if volume == "" {
		p.addf("nats-certs: --dir %s is not a writable named volume", dir)
		return
	}
	// mount is the subdirectory of volume that s mounts at target ("" if none).
	mount := func(s types.ServiceConfig, target string) (string, bool) {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source == volume && path.Clean(v.Target) == target {
				sub := ""
				if v.Volume != nil {
					sub = v.Volume.Subpath
				}
				return path.Clean(sub), v.ReadOnly
			}
		}
		return "", false
	}
	nats := proj.Services["nats"]
	if d, ok := nats.DependsOn["nats-certs"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		p.addf("nats: must depend on nats-certs with condition %s", types.ServiceConditionCompletedSuccessfully)
	}
	if sub, ro := mount(nats, natsTLSDir); sub != path.Dir(devtls.ServerCert) || !ro {
		p.addf("nats: %s is not the %s directory of volume %s, read-only", natsTLSDir, path.Dir(devtls.ServerCert), volume)
	}
	for _, name := range sortedKeys(proj.Services) {
		s := proj.Services[name]
		raw := envValue(s, natsx.EnvURL)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "tls" {
			p.addf("%s: %s %q is not tls://: NATS without TLS", name, natsx.EnvURL, raw)
		} else if !slices.Contains(hosts, u.Hostname()) {
			p.addf("%s: NATS host %s is not one of the certificate's %v", name, u.Hostname(), hosts)
		}
		ca := envValue(s, natsx.EnvTLSCA)
		if ca == "" {
			p.addf("%s: %s not set: the server is not verified", name, natsx.EnvTLSCA)
			continue
		}
		sub, ro := mount(s, path.Dir(ca))
		if sub != path.Dir(devtls.ClientCA) || path.Base(ca) != path.Base(devtls.ClientCA) || !ro {
			p.addf("%s: %s %s is not %s of volume %s's %s directory mounted read-only (only the CA, never the server's key)",
				name, natsx.EnvTLSCA, ca, path.Base(devtls.ClientCA), volume, path.Dir(devtls.ClientCA))
		}
	}
}

// envValue is the value of a service's environment variable ("" when unset).
func envValue(s types.ServiceConfig, key string) string {
	if v := s.Environment[key]; v != nil {
		return *v
	}
	return ""
}
