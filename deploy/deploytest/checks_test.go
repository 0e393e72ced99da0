package deploytest

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ksef-pipeline/ksef-pipeline/internal/ksefconn"
	"github.com/ksef-pipeline/ksef-pipeline/internal/natsx"
	"github.com/ksef-pipeline/ksef-pipeline/internal/pipeline"
	"github.com/ksef-pipeline/ksef-pipeline/internal/storage"
	"github.com/ksef-pipeline/ksef-pipeline/pkg/fa3"
)

// namespace is the one namespace everything runs in (see base/kustomization.yaml).
const namespace = "ksef"

// problems collects what a check finds, so one run reports everything.
type problems struct{ errs []error }

func (p *problems) addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// validate renders the overlay o of the deploy/k8s tree at root and runs
// every check. t provides temporary directories and environment for the
// NATS configuration parser.
func validate(t testing.TB, root string, o overlay) error {
	m, err := render(filepath.Join(root, "overlays", o.name))
	if err != nil {
		return err
	}
	var p problems
	m.checkNamespaces(&p)
	m.checkWorkloads(&p)
	m.checkDisruptionBudgets(&p)
	m.checkServices(&p)
	m.checkReferences(&p, o)
	m.checkWorkers(&p, o)
	m.checkScaledObjects(&p, o)
	m.checkNATS(t, &p, o)
	m.checkNetwork(&p, o)
	return p.err()
}

func (m *manifests) checkNamespaces(p *problems) {
	if len(m.namespaces) != 1 || m.namespaces[namespace] == nil {
		p.addf("want exactly the Namespace %s, got %v", namespace, sortedKeys(m.namespaces))
	}
	for _, id := range sortedKeys(m.namespaceOf) {
		if ns := m.namespaceOf[id]; ns != namespace {
			p.addf("%s: namespace %q, want %q", id, ns, namespace)
		}
	}
}

// checkWorkloads holds every pod to the restricted Pod Security Standard
// (the namespace enforces it) and to the pipeline's rules: resources,
// probes, a read-only root with a writable /tmp, pinned images.
func (m *manifests) checkWorkloads(p *problems) {
	for _, w := range m.workloads() {
		id, spec := w.id(), w.spec
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			p.addf("%s: automountServiceAccountToken must be false (no workload talks to the API server)", id)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			p.addf("%s: host namespaces are not allowed", id)
		}
		psc := spec.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		for _, v := range spec.Volumes {
			vs := v.VolumeSource
			if vs.ConfigMap == nil && vs.Secret == nil && vs.EmptyDir == nil && vs.PersistentVolumeClaim == nil &&
				vs.Projected == nil && vs.DownwardAPI == nil && vs.Ephemeral == nil && vs.CSI == nil {
				p.addf("%s: volume %s has a type the restricted profile forbids", id, v.Name)
			}
		}
		volumes := map[string]corev1.VolumeSource{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v.VolumeSource
		}
		if s := m.statefulSets[w.name]; w.kind == "StatefulSet" && s != nil {
			for _, c := range s.Spec.VolumeClaimTemplates {
				volumes[c.Name] = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}}
			}
		}
		containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
		for i, c := range containers {
			cid := id + " container " + c.Name
			checkImage(p, cid, c.Image)
			checkResources(p, cid, c.Resources)
			checkContainerSecurity(p, cid, psc, c.SecurityContext)
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok {
					p.addf("%s: volumeMount %s names no volume", cid, vm.Name)
				}
			}
			if strings.Contains(c.Image, "ksef-pipeline/") {
				// Our binaries write temporary files (TMPDIR=/tmp) on a
				// read-only root.
				if !mountsEmptyDir(c, volumes, "/tmp") {
					p.addf("%s: /tmp must be an emptyDir mount", cid)
				}
			}
			if !w.longRunning || i < len(spec.InitContainers) {
				continue
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				p.addf("%s: liveness and readiness probes are required", cid)
			}
			for kind, pr := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if pr == nil {
					continue
				}
				if port, ok := probePort(pr); !ok || !hasPort(c, port) {
					p.addf("%s: %s probe port %s is not a container port", cid, kind, port.String())
				}
			}
		}
		switch w.kind {
		case "Deployment":
			checkSelector(p, id, m.deployments[w.name].Spec.Selector, w.labels)
		case "StatefulSet":
			s := m.statefulSets[w.name]
			checkSelector(p, id, s.Spec.Selector, w.labels)
			if m.services[s.Spec.ServiceName] == nil {
				p.addf("%s: serviceName %q names no Service", id, s.Spec.ServiceName)
			}
		}
	}
}

func checkImage(p *problems, id, image string) {
	if image == "" {
		p.addf("%s: no image", id)
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok || tag == "" || tag == "latest" {
		p.addf("%s: image %q must have a tag other than latest, or a digest", id, image)
	}
}

func checkResources(p *problems, id string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || !okLim {
			p.addf("%s: %s request and limit are required", id, name)
			continue
		}
		if lim.Cmp(req) < 0 {
			p.addf("%s: %s limit %s below request %s", id, name, lim.String(), req.String())
		}
	}
}

func checkContainerSecurity(p *problems, id string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	if c == nil {
		p.addf("%s: securityContext is required", id)
		return
	}
	if c.Privileged != nil && *c.Privileged {
		p.addf("%s: privileged", id)
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		p.addf("%s: allowPrivilegeEscalation must be false", id)
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		p.addf("%s: readOnlyRootFilesystem must be true", id)
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") {
		p.addf("%s: capabilities must drop ALL", id)
	} else if len(c.Capabilities.Add) > 0 {
		p.addf("%s: capabilities added: %v", id, c.Capabilities.Add)
	}
	nonRoot := firstSet(c.RunAsNonRoot, pod.RunAsNonRoot)
	if nonRoot == nil || !*nonRoot {
		p.addf("%s: runAsNonRoot must be true", id)
	}
	if uid := firstSet(c.RunAsUser, pod.RunAsUser); uid != nil && *uid == 0 {
		p.addf("%s: runs as uid 0", id)
	}
	sp := firstSet(c.SeccompProfile, pod.SeccompProfile)
	if sp == nil || (sp.Type != corev1.SeccompProfileTypeRuntimeDefault && sp.Type != corev1.SeccompProfileTypeLocalhost) {
		p.addf("%s: seccompProfile must be RuntimeDefault", id)
	}
}

func firstSet[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func mountsEmptyDir(c corev1.Container, volumes map[string]corev1.VolumeSource, dir string) bool {
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == dir && volumes[vm.Name].EmptyDir != nil && !vm.ReadOnly {
			return true
		}
	}
	return false
}

func probePort(pr *corev1.Probe) (intstr.IntOrString, bool) {
	switch h := pr.ProbeHandler; {
	case h.HTTPGet != nil:
		return h.HTTPGet.Port, true
	case h.TCPSocket != nil:
		return h.TCPSocket.Port, true
	case h.GRPC != nil:
		return intstr.FromInt32(h.GRPC.Port), true
	case h.Exec != nil:
		return intstr.IntOrString{}, true
	}
	return intstr.IntOrString{}, false
}

// hasPort reports whether c declares port (by name or number); an exec
// probe (zero port) needs none.
func hasPort(c corev1.Container, port intstr.IntOrString) bool {
	if port == (intstr.IntOrString{}) {
		return true
	}
	_, ok := containerPort(c, port)
	return ok
}

func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if port.Type == intstr.String && cp.Name == port.StrVal || port.Type == intstr.Int && cp.ContainerPort == port.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func checkSelector(p *problems, id string, sel *metav1.LabelSelector, podLabels map[string]string) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	switch {
	case err != nil:
		p.addf("%s: selector: %v", id, err)
	case sel == nil || s.Empty():
		p.addf("%s: empty selector", id)
	case !s.Matches(labels.Set(podLabels)):
		p.addf("%s: selector %s does not match the pod template labels %v", id, s, podLabels)
	}
}

// checkDisruptionBudgets: every long-running workload has exactly one PDB,
// which lets at least one pod be evicted (a drain must not hang), and
// every PDB covers some workload.
func (m *manifests) checkDisruptionBudgets(p *problems) {
	used := map[string]bool{}
	for _, w := range m.workloads() {
		if !w.longRunning {
			continue
		}
		var found []string
		for _, name := range sortedKeys(m.pdbs) {
			s, err := metav1.LabelSelectorAsSelector(m.pdbs[name].Spec.Selector)
			if err == nil && !s.Empty() && s.Matches(labels.Set(w.labels)) {
				found = append(found, name)
				used[name] = true
			}
		}
		if len(found) != 1 {
			p.addf("%s: want exactly one PodDisruptionBudget, got %v", w.id(), found)
			continue
		}
		spec := m.pdbs[found[0]].Spec
		switch {
		case spec.MaxUnavailable != nil && spec.MaxUnavailable.Type == intstr.Int && spec.MaxUnavailable.IntVal < 1:
			p.addf("PodDisruptionBudget/%s: maxUnavailable below 1 blocks every eviction", found[0])
		case spec.MinAvailable != nil && spec.MinAvailable.Type == intstr.Int && spec.MinAvailable.IntVal >= w.replicas:
			p.addf("PodDisruptionBudget/%s: minAvailable %d with %d replicas blocks every eviction", found[0], spec.MinAvailable.IntVal, w.replicas)
		case spec.MaxUnavailable == nil && spec.MinAvailable == nil:
			p.addf("PodDisruptionBudget/%s: neither minAvailable nor maxUnavailable", found[0])
		}
	}
	for _, name := range sortedKeys(m.pdbs) {
		if !used[name] {
			p.addf("PodDisruptionBudget/%s selects no workload", name)
		}
	}
}

// selected returns the workloads whose pods a Service selects.
func (m *manifests) selected(svc *corev1.Service) []workload {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	var ws []workload
	for _, w := range m.workloads() {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.labels)) {
			ws = append(ws, w)
		}
	}
	return ws
}

// targetPort resolves a Service port to the container port of the pods
// behind it.
func (m *manifests) targetPort(svc *corev1.Service, sp corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp == (intstr.IntOrString{}) {
		tp = intstr.FromInt32(sp.Port)
	}
	for _, w := range m.selected(svc) {
		for _, c := range w.spec.Containers {
			if n, ok := containerPort(c, tp); ok {
				return n, true
			}
		}
	}
	return 0, false
}

func (m *manifests) checkServices(p *problems) {
	for _, name := range sortedKeys(m.services) {
		svc := m.services[name]
		if len(m.selected(svc)) == 0 {
			p.addf("Service/%s selects no workload", name)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if _, ok := m.targetPort(svc, sp); !ok {
				p.addf("Service/%s: port %s targets %s, which no selected container declares", name, sp.Name, sp.TargetPort.String())
			}
		}
	}
}

// keysOf returns the keys of a rendered or external ConfigMap or Secret.
func (m *manifests) keysOf(kind, name string, o overlay) ([]string, bool) {
	switch kind {
	case "ConfigMap":
		if cm := m.configMaps[name]; cm != nil {
			return append(sortedKeys(cm.Data), sortedKeys(cm.BinaryData)...), true
		}
	case "Secret":
		if s := m.secrets[name]; s != nil {
			return append(sortedKeys(s.Data), sortedKeys(s.StringData)...), true
		}
	}
	ks, ok := o.external[kind+"/"+name]
	return ks, ok
}

// checkReferences: every ConfigMap, Secret and key a pod uses exists in
// the rendering or is one of the overlay's documented external objects.
func (m *manifests) checkReferences(p *problems, o overlay) {
	ref := func(id, kind, name string, optional *bool, keys ...string) {
		if optional != nil && *optional {
			return
		}
		have, ok := m.keysOf(kind, name, o)
		if !ok {
			p.addf("%s: %s/%s neither rendered nor documented as external", id, kind, name)
			return
		}
		for _, k := range keys {
			if !slices.Contains(have, k) {
				p.addf("%s: %s/%s has no key %q", id, kind, name, k)
			}
		}
	}
	for _, w := range m.workloads() {
		for _, v := range w.spec.Volumes {
			vid := w.id() + " volume " + v.Name
			switch {
			case v.ConfigMap != nil:
				ref(vid, "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Optional, itemKeys(v.ConfigMap.Items)...)
			case v.Secret != nil:
				ref(vid, "Secret", v.Secret.SecretName, v.Secret.Optional, itemKeys(v.Secret.Items)...)
			}
		}
		for _, c := range append(slices.Clone(w.spec.InitContainers), w.spec.Containers...) {
			cid := w.id() + " container " + c.Name
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					ref(cid, "ConfigMap", ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional)
				case ef.SecretRef != nil:
					ref(cid, "Secret", ef.SecretRef.Name, ef.SecretRef.Optional)
				}
			}
			for _, e := range c.Env {
				switch vf := e.ValueFrom; {
				case vf == nil:
				case vf.ConfigMapKeyRef != nil:
					ref(cid, "ConfigMap", vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Optional, vf.ConfigMapKeyRef.Key)
				case vf.SecretKeyRef != nil:
					ref(cid, "Secret", vf.SecretKeyRef.Name, vf.SecretKeyRef.Optional, vf.SecretKeyRef.Key)
				}
			}
		}
	}
}

func itemKeys(items []corev1.KeyToPath) []string {
	var ks []string
	for _, it := range items {
		ks = append(ks, it.Key)
	}
	return ks
}

// env resolves a container's environment as the kubelet would: envFrom
// in order, then env. External objects' keys get placeholder values;
// fieldRefs get the pod's name.
func (m *manifests) env(w workload, c corev1.Container, o overlay) map[string]string {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		kind, name := "ConfigMap", ""
		switch {
		case ef.ConfigMapRef != nil:
			name = ef.ConfigMapRef.Name
		case ef.SecretRef != nil:
			kind, name = "Secret", ef.SecretRef.Name
		}
		switch {
		case kind == "ConfigMap" && m.configMaps[name] != nil:
			for k, v := range m.configMaps[name].Data {
				env[ef.Prefix+k] = v
			}
		case kind == "Secret" && m.secrets[name] != nil:
			for k, v := range m.secrets[name].Data {
				env[ef.Prefix+k] = string(v)
			}
			for k, v := range m.secrets[name].StringData {
				env[ef.Prefix+k] = v
			}
		default:
			for _, k := range o.external[kind+"/"+name] {
				env[ef.Prefix+k] = "external-" + strings.ToLower(k)
			}
		}
	}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.FieldRef != nil:
			env[e.Name] = w.name + "-0"
		case vf.ConfigMapKeyRef != nil && m.configMaps[vf.ConfigMapKeyRef.Name] != nil:
			env[e.Name] = m.configMaps[vf.ConfigMapKeyRef.Name].Data[vf.ConfigMapKeyRef.Key]
		case vf.SecretKeyRef != nil && m.secrets[vf.SecretKeyRef.Name] != nil:
			env[e.Name] = string(m.secrets[vf.SecretKeyRef.Name].Data[vf.SecretKeyRef.Key])
		default:
			env[e.Name] = "external"
		}
	}
	return env
}

// requiredSettings must be set explicitly for every worker, though the
// pipeline has defaults for some: the defaults suit a laptop, not a cluster.
var requiredSettings = []string{
	natsx.EnvURL, storage.EnvBackend, storage.EnvS3Endpoint, "KSEF_API_URL",
	pipeline.EnvSchemaDir, pipeline.EnvConcurrency, pipeline.EnvLogLevel, "KSEF_HTTP_ADDR", "KSEF_DRAIN_TIMEOUT",
}

// settingsFor are the settings the named worker must have: the tokens only where KSeF is called.
func settingsFor(name string) []string {
	if pipeline.CallsKSeF(name) {
		return append(slices.Clip(requiredSettings), ksefconn.EnvTokensFile)
	}
	return requiredSettings
}

// checkTokens: a worker that calls KSeF has tokens; one that does not has none — no token
// setting and no volume of the tokens Secret. tokens < 0: the count is unknown.
func checkTokens(p *problems, id, name string, env map[string]string, tokens int, secretVolumes []string) {
	if pipeline.CallsKSeF(name) {
		if tokens == 0 {
			p.addf("%s: no KSeF tokens", id)
		}
		return
	}
	for _, k := range []string{ksefconn.EnvTokensFile, ksefconn.EnvTokens} {
		if _, ok := env[k]; ok {
			p.addf("%s: %s set, but %s calls no KSeF API and must get no token", id, k, name)
		}
	}
	if slices.Contains(secretVolumes, "ksef-tokens") {
		p.addf("%s: mounts Secret ksef-tokens, but %s calls no KSeF API and must get no token", id, name)
	}
}

// drainMargin is what a stopping worker needs after its drain timeout:
// settling the last messages, closing NATS and storage connections.
const drainMargin = 10 * time.Second

// drainTimeout is how long a stopping worker may drain: the longer of
// KSEF_DRAIN_TIMEOUT and the consumer's AckWait, which internal/worker
// uses as the drain timeout when none is given (30s when KSEF_ACK_WAIT
// is unset).
func drainTimeout(env map[string]string, ps pipeline.Settings) (time.Duration, error) {
	d, err := time.ParseDuration(env["KSEF_DRAIN_TIMEOUT"])
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("KSEF_DRAIN_TIMEOUT %q is not a positive duration", env["KSEF_DRAIN_TIMEOUT"])
	}
	ack := ps.AckWait
	if ack <= 0 {
		ack = 30 * time.Second
	}
	return max(d, ack), nil
}

// placeholderTokens stands for the content of an external tokens Secret.
const placeholderTokens = "5265877635=external-token\n"

// settings resolves a worker container's environment and parses it with
// the pipeline's own SettingsFromEnv; files (the tokens) are read from the
// Secret volume mounted at their path.
func (m *manifests) settings(w workload, c corev1.Container, o overlay) (map[string]string, pipeline.Settings, error) {
	env := m.env(w, c, o)
	readFile := func(file string) ([]byte, error) {
		name, key, ok := mountedKey(w, c, "Secret", file)
		if !ok {
			return nil, fmt.Errorf("%s is not in a mounted Secret: %w", file, os.ErrNotExist)
		}
		if s := m.secrets[name]; s != nil {
			if v, ok := s.Data[key]; ok {
				return v, nil
			}
			return []byte(s.StringData[key]), nil
		}
		return []byte(placeholderTokens), nil
	}
	s, err := pipeline.SettingsFromEnv(func(k string) string { return env[k] }, readFile)
	return env, s, err
}

// s3URL writes the S3 endpoint as a URL, for the endpoint checks.
func s3URL(c storage.S3Config) string {
	if c.UseTLS {
		return "https://" + c.Endpoint
	}
	return "http://" + c.Endpoint
}

// checkWorkers checks each worker's objects and settings: the settings
// must pass the pipeline's own parsers, point at services that exist (or
// at external HTTPS endpoints outside the development overlay), and match
// the pod: health port, drain timeout, mounted tokens and schemas.
func (m *manifests) checkWorkers(p *problems, o overlay) {
	if d := m.deployments["ksef-emulator"]; (d != nil) != o.inCluster {
		p.addf("ksef-emulator Deployment present: %v, want %v", d != nil, o.inCluster)
	}
	if s := m.statefulSets["minio"]; (s != nil) != o.inCluster {
		p.addf("minio StatefulSet present: %v, want %v", s != nil, o.inCluster)
	}
	for _, name := range workers {
		d := m.deployments[name]
		if d == nil {
			p.addf("worker %s: no Deployment", name)
			continue
		}
		if d.Labels["app.kubernetes.io/component"] != "worker" || d.Spec.Template.Labels["app.kubernetes.io/component"] != "worker" {
			p.addf("Deployment/%s: label app.kubernetes.io/component=worker missing (network policies select it)", name)
		}
		if m.scaledObjects[name] == nil {
			p.addf("worker %s: no ScaledObject", name)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			p.addf("Deployment/%s: want one container", name)
			continue
		}
		w := workload{kind: "Deployment", name: name, labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec, longRunning: true}
		c := d.Spec.Template.Spec.Containers[0]
		id := "Deployment/" + name
		if !strings.HasSuffix(strings.Split(c.Image, ":")[0], "/"+name) {
			p.addf("%s: image %s is not the %s image", id, c.Image, name)
		}
		if !o.inCluster && strings.HasSuffix(c.Image, ":dev") {
			p.addf("%s: development image %s", id, c.Image)
		}
		env, ps, err := m.settings(w, c, o)
		for _, k := range settingsFor(name) {
			if _, ok := env[k]; !ok {
				p.addf("%s: %s not set", id, k)
			}
		}
		if err != nil {
			p.addf("%s: settings (pipeline.SettingsFromEnv): %v", id, err)
		} else {
			if ps.Storage.Backend != "s3" {
				p.addf("%s: storage backend %q, want s3 (a local directory is not shared by replicas)", id, ps.Storage.Backend)
			}
		}
		var secrets []string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		tokens := len(ps.KSeF.Tokens)
		if err != nil {
			tokens = -1 // unknown, reported above
		}
		checkTokens(p, id, name, env, tokens, secrets)
		// Its own NATS user, over TLS, bound to what the provisioning Job made.
		if env[natsx.EnvUser] != name || env[natsx.EnvPassword] == "" {
			p.addf("%s: NATS user %q (with a password: %v), want its own user %s", id, env[natsx.EnvUser], env[natsx.EnvPassword] != "", name)
		}
		if err == nil && !ps.NATS.Provisioned {
			p.addf("%s: %s is not true: its NATS user may not create the stream or consumers", id, natsx.EnvProvisioned)
		}
		if ca := env[natsx.EnvTLSCA]; ca == "" {
			p.addf("%s: %s not set: NATS without TLS", id, natsx.EnvTLSCA)
		} else if sec, _, ok := mountedKey(w, c, "Secret", ca); !ok || sec != "nats-tls" {
			p.addf("%s: %s %s is not the mounted Secret nats-tls", id, natsx.EnvTLSCA, ca)
		}
		grace := time.Duration(deref(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
		if drain, err := drainTimeout(env, ps); err != nil || drain+drainMargin > grace {
			p.addf("%s: drain timeout %s (%v) must be at least %s shorter than terminationGracePeriodSeconds (%s)", id, drain, err, drainMargin, grace)
		}
		m.checkHealthPort(p, id, c, env["KSEF_HTTP_ADDR"])
		m.checkMountedFile(p, id, w, c, "ConfigMap", path.Join(env["KSEF_SCHEMA_DIR"], fa3.MainSchemaFile))
		// fa3 resolves the schema's import of StrukturyDanych to bazowe/.
		m.checkMountedFile(p, id, w, c, "ConfigMap", path.Join(env["KSEF_SCHEMA_DIR"], "bazowe/StrukturyDanych_v10-0E.xsd"))

		if err == nil {
			m.checkEndpoint(p, id+" KSEF_NATS_URL", ps.NATS.URL, false, o)
			m.checkEndpoint(p, id+" KSEF_S3_ENDPOINT", s3URL(ps.Storage.S3), !o.inCluster, o)
		}
		m.checkEndpoint(p, id+" KSEF_API_URL", env["KSEF_API_URL"], !o.inCluster, o)
		if !o.inCluster && env["KSEF_API_URL"] != "https://api.ksef.mf.gov.pl" {
			p.addf("%s: KSEF_API_URL %q is not KSeF's production address", id, env["KSEF_API_URL"])
		}
	}
}

// checkHealthPort: the worker listens (KSEF_HTTP_ADDR) on the port its
// probes and metrics Service use.
func (m *manifests) checkHealthPort(p *problems, id string, c corev1.Container, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.addf("%s: KSEF_HTTP_ADDR %q: %v", id, addr, err)
		return
	}
	want, _ := strconv.Atoi(port)
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil {
		if n, ok := containerPort(c, c.LivenessProbe.HTTPGet.Port); !ok || int(n) != want {
			p.addf("%s: probes use port %d, KSEF_HTTP_ADDR says %d", id, n, want)
		}
	}
	svc := m.services[strings.TrimPrefix(id, "Deployment/")]
	if svc == nil {
		p.addf("%s: no metrics Service", id)
		return
	}
	for _, sp := range svc.Spec.Ports {
		if n, ok := m.targetPort(svc, sp); ok && int(n) == want && sp.Name == "metrics" {
			return
		}
	}
	p.addf("Service/%s: no port named metrics reaching %d", svc.Name, want)
}

// checkMountedFile: file lies in a volume of the given kind (ConfigMap or
// Secret) mounted into c.
func (m *manifests) checkMountedFile(p *problems, id string, w workload, c corev1.Container, kind, file string) {
	if _, _, ok := mountedKey(w, c, kind, file); !ok {
		p.addf("%s: %s is not in a mounted %s", id, file, kind)
	}
}

// mountedKey finds the ConfigMap or Secret (by kind) and key that appear
// at file in container c: a volume mounted above file whose items (or,
// without items, whose keys) include the relative path.
func mountedKey(w workload, c corev1.Container, kind, file string) (name, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		rel, under := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !under {
			continue
		}
		if vm.SubPath != "" {
			continue
		}
		for _, v := range w.spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			var items []corev1.KeyToPath
			switch {
			case kind == "Secret" && v.Secret != nil:
				name, items = v.Secret.SecretName, v.Secret.Items
			case kind == "ConfigMap" && v.ConfigMap != nil:
				name, items = v.ConfigMap.Name, v.ConfigMap.Items
			default:
				continue
			}
			if len(items) == 0 && !strings.Contains(rel, "/") {
				return name, rel, true
			}
			for _, it := range items {
				if it.Path == rel {
					return name, it.Key, true
				}
			}
		}
	}
	return "", "", false
}

// serviceFor returns the Service a cluster host name designates ("nats",
// "nats.ksef", "nats.ksef.svc", "nats.ksef.svc.cluster.local").
func (m *manifests) serviceFor(host string) (*corev1.Service, bool) {
	parts := strings.Split(strings.TrimSuffix(host, ".cluster.local"), ".")
	switch {
	case len(parts) == 1,
		len(parts) == 2 && parts[1] == namespace,
		len(parts) == 3 && parts[1] == namespace && parts[2] == "svc":
		svc := m.services[parts[0]]
		return svc, svc != nil
	}
	return nil, false
}

// inClusterName reports whether host is a cluster DNS name rather than
// an external one.
func inClusterName(host string) bool {
	return !strings.Contains(host, ".") || strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".cluster.local")
}

// checkEndpoint: rawURL's host is a Service of the rendering with that
// port, or (external allowed) a public name reached over HTTPS.
func (m *manifests) checkEndpoint(p *problems, id, rawURL string, external bool, o overlay) {
	for _, one := range strings.Split(rawURL, ",") {
		u, err := url.Parse(one)
		if err != nil || u.Hostname() == "" {
			p.addf("%s: %q is not a URL", id, one)
			continue
		}
		host, port := u.Hostname(), u.Port()
		if svc, ok := m.serviceFor(host); ok {
			if !servicePort(svc, port) {
				p.addf("%s: Service/%s has no port %s", id, svc.Name, port)
			}
			continue
		}
		switch {
		case inClusterName(host):
			p.addf("%s: %s names no Service of the overlay", id, host)
		case !external:
			p.addf("%s: %s must be a Service of the overlay", id, host)
		case u.Scheme != "https":
			p.addf("%s: external %s must use TLS", id, one)
		}
	}
}

func servicePort(svc *corev1.Service, port string) bool {
	for _, sp := range svc.Spec.Ports {
		if strconv.Itoa(int(sp.Port)) == port {
			return true
		}
	}
	return false
}

// kedaNATSKeys are the nats-jetstream trigger's metadata keys (KEDA docs).
var kedaNATSKeys = map[string]bool{
	"natsServerMonitoringEndpoint": true, "account": true, "stream": true, "consumer": true,
	"lagThreshold": true, "activationLagThreshold": true, "useHttps": true,
}

// consumerName is the durable JetStream consumer of a worker:
// internal/pipeline runs worker.Config{Name: <worker name>}, and
// internal/worker uses Name as the consumer's Durable.
func consumerName(worker string) string { return worker }

func (m *manifests) checkScaledObjects(p *problems, o overlay) {
	for _, name := range sortedKeys(m.scaledObjects) {
		so := m.scaledObjects[name]
		id := "ScaledObject/" + name
		spec := so.Spec
		if spec.ScaleTargetRef == nil {
			p.addf("%s: no scaleTargetRef", id)
			continue
		}
		target := spec.ScaleTargetRef.Name
		d := m.deployments[target]
		if d == nil || (spec.ScaleTargetRef.Kind != "" && spec.ScaleTargetRef.Kind != "Deployment") {
			p.addf("%s: scaleTargetRef %s is not a Deployment of the overlay", id, target)
			continue
		}
		lo, hi := deref(spec.MinReplicaCount, 0), deref(spec.MaxReplicaCount, 100)
		if lo < 1 || lo > hi {
			p.addf("%s: replicas %d..%d: want 1 <= min <= max (workers keep health endpoints and polling alive)", id, lo, hi)
		}
		if r := deref(d.Spec.Replicas, 1); r < lo || r > hi {
			p.addf("%s: Deployment/%s starts with %d replicas, outside %d..%d", id, target, r, lo, hi)
		}
		if f := spec.Fallback; f != nil && (f.Replicas < lo || f.Replicas > hi || f.FailureThreshold < 1) {
			p.addf("%s: fallback %d replicas after %d failures, outside %d..%d", id, f.Replicas, f.FailureThreshold, lo, hi)
		}
		if len(spec.Triggers) != 1 || spec.Triggers[0].Type != "nats-jetstream" {
			p.addf("%s: want one nats-jetstream trigger", id)
			continue
		}
		md := spec.Triggers[0].Metadata
		for _, k := range sortedKeys(md) {
			if !kedaNATSKeys[k] {
				p.addf("%s: unknown nats-jetstream metadata %q", id, k)
			}
		}
		for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} {
			if md[k] == "" {
				p.addf("%s: metadata %s missing", id, k)
			}
		}
		for _, k := range []string{"lagThreshold", "activationLagThreshold"} {
			if v, ok := md[k]; ok {
				if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
					p.addf("%s: %s %q is not a count", id, k, v)
				}
			}
		}
		if v, ok := md["useHttps"]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				p.addf("%s: useHttps %q", id, v)
			}
		}
		env := m.env(workload{name: target}, d.Spec.Template.Spec.Containers[0], o)
		if want := natsx.StreamName(env["KSEF_SUBJECT_PREFIX"]); md["stream"] != want {
			p.addf("%s: stream %q, the workers use %q", id, md["stream"], want)
		}
		if want := consumerName(target); md["consumer"] != want {
			p.addf("%s: consumer %q, %s's durable consumer is %q", id, md["consumer"], target, want)
		}
		// KEDA runs in its own namespace: the endpoint must be the full
		// name of the NATS monitoring port.
		host, port, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
		if err != nil || !strings.HasSuffix(host, "."+namespace+".svc.cluster.local") {
			p.addf("%s: natsServerMonitoringEndpoint %q must be <service>.%s.svc.cluster.local:<port>", id, md["natsServerMonitoringEndpoint"], namespace)
			continue
		}
		svc, ok := m.serviceFor(host)
		if !ok {
			p.addf("%s: %s names no Service", id, host)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) != port {
				continue
			}
			if n, ok := m.targetPort(svc, sp); !ok || m.natsMonitorPort() != n {
				p.addf("%s: %s:%s does not reach the NATS monitoring port", id, host, port)
			}
			port = ""
		}
		if port != "" {
			p.addf("%s: Service/%s has no port %s", id, svc.Name, port)
		}
	}
}

// natsMonitorPort is the container port named monitor of the NATS pods.
func (m *manifests) natsMonitorPort() int32 {
	if s := m.statefulSets["nats"]; s != nil {
		for _, c := range s.Spec.Template.Spec.Containers {
			if n, ok := containerPort(c, intstr.FromString("monitor")); ok {
				return n
			}
		}
	}
	return -1
}

// checkNATS parses the cluster's configuration with nats-server's own
// parser (unknown fields are errors there too) and checks it against the
// StatefulSet: ports, routes to every replica by its stable name, the
// JetStream store on the volume and smaller than it, lame duck mode within
// the termination grace period, stream replicas within the cluster size.
func (m *manifests) checkNATS(t testing.TB, p *problems, o overlay) {
	s := m.statefulSets["nats"]
	if s == nil {
		p.addf("no StatefulSet nats")
		return
	}
	id := "StatefulSet/nats"
	replicas := deref(s.Spec.Replicas, 1)
	if replicas != 3 && replicas != 5 {
		p.addf("%s: %d replicas; a JetStream cluster wants 3 or 5", id, replicas)
	}
	if h := m.services[s.Spec.ServiceName]; h == nil || h.Spec.ClusterIP != corev1.ClusterIPNone || !h.Spec.PublishNotReadyAddresses {
		p.addf("%s: serviceName %q must be a headless Service publishing not-ready addresses (routes form before readiness)", id, s.Spec.ServiceName)
	}
	spec := s.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		p.addf("%s: want one container", id)
		return
	}
	c := spec.Containers[0]
	args := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		p.addf("%s: no --config", id)
		return
	}
	confPath := args[i+1]
	dir := t.TempDir()
	// The configuration directory: a ConfigMap, or several projected into one directory.
	data := map[string]string{}
	for _, vm := range c.VolumeMounts {
		if path.Dir(confPath) != path.Clean(vm.MountPath) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			var names []string
			if v.ConfigMap != nil {
				names = append(names, v.ConfigMap.Name)
			}
			if v.Projected != nil {
				for _, src := range v.Projected.Sources {
					if src.ConfigMap != nil {
						names = append(names, src.ConfigMap.Name)
					}
				}
			}
			for _, n := range names {
				if cm := m.configMaps[n]; cm != nil {
					maps.Copy(data, cm.Data)
				}
			}
		}
	}
	if data[path.Base(confPath)] == "" {
		p.addf("%s: %s is not in a mounted ConfigMap", id, confPath)
		return
	}
	// The TLS files are a Secret's, absent here: the configuration is read with a test
	// certificate in their place, so that nats-server's parser loads a real one.
	tlsDir := natsTestTLS(t)
	for k, v := range data {
		v = strings.ReplaceAll(v, natsTLSDir+"/", tlsDir+"/")
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
			p.addf("%s: %v", id, err)
			return
		}
	}
	for _, u := range natsPasswordKeys() {
		t.Setenv(u, "placeholder-"+u)
	}
	podName := ""
	for _, e := range c.Env {
		if e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			podName = s.Name + "-0"
		}
	}
	t.Setenv("POD_NAME", podName)
	opts, err := server.ProcessConfigFile(filepath.Join(dir, path.Base(confPath)))
	if err != nil {
		p.addf("%s: %s: %v", id, confPath, err)
		return
	}
	if opts.ServerName != s.Name+"-0" {
		p.addf("%s: server_name %q, want the pod name (POD_NAME from metadata.name)", id, opts.ServerName)
	}
	port := func(name string) int {
		n, _ := containerPort(c, intstr.FromString(name))
		return int(n)
	}
	if opts.Port != port("client") || opts.HTTPPort != port("monitor") || opts.Cluster.Port != port("cluster") {
		p.addf("%s: ports client %d, monitor %d, cluster %d differ from the container ports", id, opts.Port, opts.HTTPPort, opts.Cluster.Port)
	}
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Host)
	}
	var want []string
	for i := range replicas {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", s.Name, i, s.Spec.ServiceName, port("cluster")))
	}
	if !slices.Equal(routes, want) {
		p.addf("%s: routes %v, want %v", id, routes, want)
	}
	if !opts.JetStream {
		p.addf("%s: JetStream is off", id)
	}
	checkNATSAuth(p, id, opts)
	if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "nats-tls" && slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.Name == v.Name && path.Clean(vm.MountPath) == natsTLSDir
		})
	}) {
		p.addf("%s: the Secret nats-tls is not mounted at %s", id, natsTLSDir)
	}
	var store *resource.Quantity
	for _, vm := range c.VolumeMounts {
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			if vm.Name == pvc.Name && path.Clean(vm.MountPath) == path.Clean(opts.StoreDir) {
				q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
				store = &q
			}
		}
	}
	switch {
	case store == nil:
		p.addf("%s: store_dir %q is not a persistent volume", id, opts.StoreDir)
	case opts.JetStreamMaxStore <= 0 || opts.JetStreamMaxStore >= store.Value():
		p.addf("%s: max_file_store %d must be set below the volume's %s", id, opts.JetStreamMaxStore, store.String())
	}
	if mem := c.Resources.Limits.Memory(); opts.JetStreamMaxMemory >= mem.Value() {
		p.addf("%s: max_memory_store %d not below the memory limit %s", id, opts.JetStreamMaxMemory, mem.String())
	}
	grace := time.Duration(deref(spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if opts.LameDuckDuration+opts.LameDuckGracePeriod >= grace {
		p.addf("%s: lame duck %s + %s does not fit terminationGracePeriodSeconds %s", id, opts.LameDuckDuration, opts.LameDuckGracePeriod, grace)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil ||
		!slices.Contains(c.Lifecycle.PreStop.Exec.Command, "ldm="+opts.PidFile) {
		p.addf("%s: preStop must signal lame duck mode through pid_file %s", id, opts.PidFile)
	}
	for _, name := range workers {
		d := m.deployments[name]
		if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		env := m.env(workload{name: name}, d.Spec.Template.Spec.Containers[0], o)
		if n, err := strconv.Atoi(env[natsx.EnvReplicas]); err != nil || n < 1 || int32(n) > replicas {
			p.addf("Deployment/%s: %s %q must be 1..%d (NATS nodes)", name, natsx.EnvReplicas, env[natsx.EnvReplicas], replicas)
		}
	}
}
