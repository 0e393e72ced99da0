package deploytest

import (
	"net"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// peer is one end of a connection: a pod (namespace and labels) or, with
// ip set, an address outside the cluster.
type peer struct {
	name      string
	namespace string
	labels    map[string]string
	ip        net.IP
}

// Pods and addresses outside the overlay that the policies talk about.
var (
	kubeDNS    = peer{name: "kube-dns", namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	prometheus = peer{name: "prometheus", namespace: "monitoring", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	kedaPod    = peer{name: "keda-operator", namespace: "keda", labels: map[string]string{"app": "keda-operator"}}
	outsider   = peer{name: "default/some-pod", namespace: "default", labels: map[string]string{"app": "some-pod"}}
	// internet stands for KSeF and an external S3 (a documentation address;
	// nothing is sent anywhere).
	internet = peer{name: "public address", ip: net.ParseIP("203.0.113.10")}
)

func (m *manifests) namespaceLabels(ns string) labels.Set {
	l := labels.Set{"kubernetes.io/metadata.name": ns}
	if n := m.namespaces[ns]; n != nil {
		for k, v := range n.Labels {
			l[k] = v
		}
	}
	return l
}

// allowed reports whether the overlay's NetworkPolicies let src open a
// connection to dst on port: src's egress and dst's ingress must both
// allow it. Only the overlay's namespace has policies.
func (m *manifests) allowed(src, dst peer, port int32, proto corev1.Protocol) bool {
	return m.admits(src, dst, networkingv1.PolicyTypeEgress, port, proto) &&
		m.admits(dst, src, networkingv1.PolicyTypeIngress, port, proto)
}

// admits evaluates the policies selecting self in one direction against
// the other end of the connection.
func (m *manifests) admits(self, other peer, dir networkingv1.PolicyType, port int32, proto corev1.Protocol) bool {
	if self.ip != nil || self.namespace != namespace {
		return true
	}
	isolated := false
	for _, np := range m.netpols {
		if !matches(&np.Spec.PodSelector, self.labels) || !hasPolicyType(np, dir) {
			continue
		}
		isolated = true
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range np.Spec.Egress {
				if portsMatch(r.Ports, port, proto) && m.peersMatch(r.To, other) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Ingress {
				if portsMatch(r.Ports, port, proto) && m.peersMatch(r.From, other) {
					return true
				}
			}
		}
	}
	return !isolated
}

func hasPolicyType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 { // the API server's defaulting
		return t == networkingv1.PolicyTypeIngress || len(np.Spec.Egress) > 0
	}
	for _, pt := range np.Spec.PolicyTypes {
		if pt == t {
			return true
		}
	}
	return false
}

func matches(sel *metav1.LabelSelector, l map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		// Named ports are not used by these manifests; treat them as no match.
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if p.Port.StrVal == "" && port >= lo && port <= hi {
			return true
		}
	}
	return false
}

func (m *manifests) peersMatch(peers []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(peers) == 0 {
		return true
	}
	for _, np := range peers {
		if np.IPBlock != nil {
			if p.ip != nil && inBlock(np.IPBlock, p.ip) {
				return true
			}
			continue
		}
		if p.ip != nil {
			continue
		}
		if np.NamespaceSelector == nil && p.namespace != namespace ||
			np.NamespaceSelector != nil && !matches(np.NamespaceSelector, m.namespaceLabels(p.namespace)) {
			continue
		}
		if np.PodSelector == nil || matches(np.PodSelector, p.labels) {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, ip net.IP) bool {
	_, n, err := net.ParseCIDR(b.CIDR)
	if err != nil || !n.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if _, x, err := net.ParseCIDR(e); err == nil && x.Contains(ip) {
			return false
		}
	}
	return true
}

// destination resolves a URL to the pods behind its Service and their
// port, or to the internet.
func (m *manifests) destination(rawURL string) (peer, int32, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return peer{}, 0, false
	}
	port := u.Port()
	if svc, ok := m.serviceFor(u.Hostname()); ok {
		for _, sp := range svc.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) != port {
				continue
			}
			n, ok := m.targetPort(svc, sp)
			ws := m.selected(svc)
			if !ok || len(ws) == 0 {
				return peer{}, 0, false
			}
			return peer{name: ws[0].id(), namespace: namespace, labels: ws[0].labels}, n, true
		}
		return peer{}, 0, false
	}
	n, err := strconv.Atoi(port)
	if port == "" {
		n, err = 443, nil
		if u.Scheme == "http" {
			n = 80
		}
	}
	return internet, int32(n), err == nil
}

type flow struct {
	src, dst peer
	port     int32
	proto    corev1.Protocol
	why      string
}

// checkNetwork evaluates the NetworkPolicies on the connections the
// pipeline needs (which must be allowed) and on some it must not allow.
func (m *manifests) checkNetwork(p *problems, o overlay) {
	podOf := func(w workload) peer { return peer{name: w.id(), namespace: namespace, labels: w.labels} }
	var need, deny []flow
	var natsPod peer
	if s := m.statefulSets["nats"]; s != nil {
		natsPod = peer{name: "StatefulSet/nats", namespace: namespace, labels: s.Spec.Template.Labels}
		need = append(need,
			flow{natsPod, natsPod, 6222, corev1.ProtocolTCP, "routes between NATS nodes"},
			flow{natsPod, kubeDNS, 53, corev1.ProtocolUDP, "DNS for the routes"},
			flow{kedaPod, natsPod, m.natsMonitorPort(), corev1.ProtocolTCP, "KEDA reads consumer lag"},
		)
		deny = append(deny,
			flow{outsider, natsPod, 4222, corev1.ProtocolTCP, "other namespaces reach NATS"},
			flow{prometheus, natsPod, 4222, corev1.ProtocolTCP, "monitoring reaches the NATS client port"},
			flow{natsPod, internet, 443, corev1.ProtocolTCP, "NATS reaches the internet"},
		)
	}
	for _, w := range m.workloads() {
		if w.kind == "Job" {
			need = append(need, flow{podOf(w), kubeDNS, 53, corev1.ProtocolUDP, "DNS"})
			if mp, ok := m.services["minio"]; ok && w.name == "minio-buckets" {
				dst, port, _ := m.destination("http://minio:" + strconv.Itoa(int(mp.Spec.Ports[0].Port)))
				need = append(need, flow{podOf(w), dst, port, corev1.ProtocolTCP, "bucket creation"})
			}
		}
	}
	for _, name := range workers {
		d := m.deployments[name]
		if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		w := workload{kind: "Deployment", name: name, labels: d.Spec.Template.Labels, spec: &d.Spec.Template.Spec}
		src := podOf(w)
		env, ps, err := m.settings(w, d.Spec.Template.Spec.Containers[0], o)
		if err != nil {
			continue // checkWorkers reports it
		}
		dests := map[string]string{
			"KSeF (KSEF_API_URL)":   env["KSEF_API_URL"],
			"NATS (KSEF_NATS_URL)":  ps.NATS.URL,
			"S3 (KSEF_S3_ENDPOINT)": s3URL(ps.Storage.S3),
		}
		for what, u := range dests {
			dst, port, ok := m.destination(u)
			if !ok {
				p.addf("Deployment/%s: cannot resolve %s %q", name, what, u)
				continue
			}
			need = append(need, flow{src, dst, port, corev1.ProtocolTCP, what})
		}
		need = append(need,
			flow{src, kubeDNS, 53, corev1.ProtocolUDP, "DNS"},
			flow{src, kubeDNS, 53, corev1.ProtocolTCP, "DNS over TCP"},
			flow{prometheus, src, 9090, corev1.ProtocolTCP, "metrics scraping"},
		)
		deny = append(deny,
			flow{outsider, src, 9090, corev1.ProtocolTCP, "other namespaces reach the worker"},
			flow{src, internet, 80, corev1.ProtocolTCP, "plain HTTP to the internet"},
		)
		if natsPod.labels != nil {
			deny = append(deny, flow{src, natsPod, 6222, corev1.ProtocolTCP, "a worker reaches the NATS route port"})
		}
	}
	if len(m.netpols) == 0 {
		p.addf("no NetworkPolicies")
	}
	for _, f := range need {
		if !m.allowed(f.src, f.dst, f.port, f.proto) {
			p.addf("network: %s -> %s:%d/%s (%s) is blocked", f.src.name, f.dst.name, f.port, f.proto, f.why)
		}
	}
	for _, f := range deny {
		if m.allowed(f.src, f.dst, f.port, f.proto) {
			p.addf("network: %s -> %s:%d/%s is allowed (%s)", f.src.name, f.dst.name, f.port, f.proto, f.why)
		}
	}
}
