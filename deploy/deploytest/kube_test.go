package deploytest

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// scaledObject is the part of KEDA's ScaledObject (keda.sh/v1alpha1) the
// manifests use, field for field as in KEDA's API types, so that strict
// decoding rejects a misspelt field as KEDA's CRD schema would. KEDA's
// own Go module would pull in controller-runtime for four structs.
type scaledObject struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            scaledObjectSpec  `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef        *scaleTarget     `json:"scaleTargetRef"`
	PollingInterval       *int32           `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32           `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32           `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32           `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32           `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32           `json:"maxReplicaCount,omitempty"`
	Advanced              *advancedConfig  `json:"advanced,omitempty"`
	Triggers              []scaleTrigger   `json:"triggers"`
	Fallback              *scalingFallback `json:"fallback,omitempty"`
}

type scaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type advancedConfig struct {
	HorizontalPodAutoscalerConfig *hpaConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool       `json:"restoreToOriginalReplicaCount,omitempty"`
}

type hpaConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

type scalingFallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

type scaleTrigger struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *authenticationRef             `json:"authenticationRef,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

type authenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// kinds maps apiVersion/kind to a new typed object. A kind missing here
// fails the validation: add its type rather than let it through unchecked.
var kinds = map[string]func() any{
	"v1/Namespace":                       func() any { return new(corev1.Namespace) },
	"v1/ConfigMap":                       func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                          func() any { return new(corev1.Secret) },
	"v1/Service":                         func() any { return new(corev1.Service) },
	"apps/v1/Deployment":                 func() any { return new(appsv1.Deployment) },
	"apps/v1/StatefulSet":                func() any { return new(appsv1.StatefulSet) },
	"batch/v1/Job":                       func() any { return new(batchv1.Job) },
	"policy/v1/PodDisruptionBudget":      func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return new(networkingv1.NetworkPolicy) },
	"keda.sh/v1alpha1/ScaledObject":      func() any { return new(scaledObject) },
}

// manifests is one rendered overlay, decoded.
type manifests struct {
	namespaces    map[string]*corev1.Namespace
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	services      map[string]*corev1.Service
	deployments   map[string]*appsv1.Deployment
	statefulSets  map[string]*appsv1.StatefulSet
	jobs          map[string]*batchv1.Job
	pdbs          map[string]*policyv1.PodDisruptionBudget
	netpols       map[string]*networkingv1.NetworkPolicy
	scaledObjects map[string]*scaledObject
	// namespaceOf records each namespaced object's namespace by "Kind/name".
	namespaceOf map[string]string
}

// render builds the kustomization in dir (kustomize's default options:
// no plugins, files only from inside the tree) and decodes every object
// strictly.
func render(dir string) (*manifests, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", filepath.Base(dir), err)
	}
	m := &manifests{
		namespaces:    map[string]*corev1.Namespace{},
		configMaps:    map[string]*corev1.ConfigMap{},
		secrets:       map[string]*corev1.Secret{},
		services:      map[string]*corev1.Service{},
		deployments:   map[string]*appsv1.Deployment{},
		statefulSets:  map[string]*appsv1.StatefulSet{},
		jobs:          map[string]*batchv1.Job{},
		pdbs:          map[string]*policyv1.PodDisruptionBudget{},
		netpols:       map[string]*networkingv1.NetworkPolicy{},
		scaledObjects: map[string]*scaledObject{},
		namespaceOf:   map[string]string{},
	}
	var errs []error
	for _, r := range rm.Resources() {
		kind, name := r.GetKind(), r.GetName()
		id := kind + "/" + name
		y, err := r.AsYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		newObj, ok := kinds[r.GetApiVersion()+"/"+kind]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no Go type registered for %s %s", id, r.GetApiVersion(), kind))
			continue
		}
		obj := newObj()
		if err := decodeStrict(y, obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		if kind != "Namespace" {
			m.namespaceOf[id] = r.GetNamespace()
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespaces[name] = o
		case *corev1.ConfigMap:
			m.configMaps[name] = o
		case *corev1.Secret:
			m.secrets[name] = o
		case *corev1.Service:
			m.services[name] = o
		case *appsv1.Deployment:
			m.deployments[name] = o
		case *appsv1.StatefulSet:
			m.statefulSets[name] = o
		case *batchv1.Job:
			m.jobs[name] = o
		case *policyv1.PodDisruptionBudget:
			m.pdbs[name] = o
		case *networkingv1.NetworkPolicy:
			m.netpols[name] = o
		case *scaledObject:
			m.scaledObjects[name] = o
		}
	}
	return m, errors.Join(errs...)
}

// decodeStrict decodes YAML into a typed object the way kube-apiserver
// does with strict field validation: duplicate keys, unknown fields and
// fields in the wrong case are errors.
func decodeStrict(y []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// workload is a pod template and what owns it.
type workload struct {
	kind, name  string
	labels      map[string]string // pod template labels
	spec        *corev1.PodSpec
	longRunning bool // Deployment or StatefulSet: needs probes and a PDB
	replicas    int32
}

func (w workload) id() string { return w.kind + "/" + w.name }

// workloads lists every pod template, sorted for stable messages.
func (m *manifests) workloads() []workload {
	var ws []workload
	for n, d := range m.deployments {
		ws = append(ws, workload{"Deployment", n, d.Spec.Template.Labels, &d.Spec.Template.Spec, true, deref(d.Spec.Replicas, 1)})
	}
	for n, s := range m.statefulSets {
		ws = append(ws, workload{"StatefulSet", n, s.Spec.Template.Labels, &s.Spec.Template.Spec, true, deref(s.Spec.Replicas, 1)})
	}
	for n, j := range m.jobs {
		ws = append(ws, workload{"Job", n, j.Spec.Template.Labels, &j.Spec.Template.Spec, false, 1})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].id() < ws[j].id() })
	return ws
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
