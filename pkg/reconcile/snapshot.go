// Package reconcile turns Kubernetes objects into a route.Table.
//
// The translation (Build) is a pure, deterministic function of a Snapshot:
// the same objects, in any order, give the same table and the same Problems
// in the same order. A bad field or object is rejected on its own, reported
// as a Problem, and never blocks the rest of the table.
//
// This package must never import pkg/proxy or pkg/stream.
package reconcile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
)

// Options say which Ingresses are ours.
type Options struct {
	// IngressClass is the IngressClass name we serve (e.g. "kakehi"); it is
	// also the value of the legacy kubernetes.io/ingress.class annotation
	// that selects us.
	IngressClass string
	// ControllerName is the IngressClass spec.controller we own (e.g.
	// "kakehi.dev/ingress-controller").
	ControllerName string
	// DefaultTLSSecret, when set, is the Secret whose certificate is
	// served for server names that no Ingress covers.
	DefaultTLSSecret types.NamespacedName
	// Certs caches parsed certificates between builds; nil parses every
	// time. It does not change what Build returns.
	Certs *CertCache
	// AllowExternalName lets ExternalName Services be backends
	// (--allow-external-name-services).
	AllowExternalName bool
}

// Snapshot is every object the translation reads (from the informer cache).
// The slices may be in any order. Objects are identified by namespace/name,
// which must be unique within a kind, as in any cache. Build never modifies
// a Snapshot.
type Snapshot struct {
	IngressClasses []networkingv1.IngressClass
	Ingresses      []networkingv1.Ingress
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	// Secrets are the TLS Secrets the Ingresses reference (see
	// TLSSecretRefs); no other Secret needs to be here.
	Secrets []corev1.Secret
	// RoutePolicies are every RoutePolicy in the watched namespaces.
	RoutePolicies []v1alpha1.RoutePolicy
}

// Problem is one rejected field or object, or a piece of information, found
// by Build. The controller turns each into an Event (and a condition) on the
// object it names.
type Problem struct {
	Kind      string // "Ingress", "IngressClass", ...
	Namespace string
	Name      string
	Type      string // corev1.EventTypeWarning for a rejected field/object, corev1.EventTypeNormal for information
	Reason    string // CamelCase, e.g. "ServiceNotFound", "InvalidHost", "RuleConflict"
	Field     string // the field path, e.g. "spec.rules[0].http.paths[1].backend.service.name"
	Message   string // human message that names the field and the reason
}

// Problem reasons reported by Build.
const (
	ReasonInvalidHost            = "InvalidHost"
	ReasonInvalidPath            = "InvalidPath"
	ReasonInvalidBackend         = "InvalidBackend"
	ReasonUnsupportedBackend     = "UnsupportedBackend"
	ReasonServiceNotFound        = "ServiceNotFound"
	ReasonPortNotFound           = "PortNotFound"
	ReasonExternalNameNotAllowed = "ExternalNameNotAllowed"
	ReasonRuleConflict           = "RuleConflict"
	ReasonDefaultBackendConflict = "DefaultBackendConflict"
)

// ingressWarning returns a Warning Problem on ing for field. The message is
// the field path, a colon, and the formatted detail.
func ingressWarning(ing *networkingv1.Ingress, reason, field, format string, args ...any) Problem {
	return Problem{
		Kind:      "Ingress",
		Namespace: ing.Namespace,
		Name:      ing.Name,
		Type:      corev1.EventTypeWarning,
		Reason:    reason,
		Field:     field,
		Message:   field + ": " + fmt.Sprintf(format, args...),
	}
}

// objKey is a namespace/name pair used as a map key.
type objKey struct{ namespace, name string }

func (k objKey) String() string { return k.namespace + "/" + k.name }

// snapshotIndex holds the lookups Build needs, computed once per Build so
// that the translation stays linear in the number of objects.
type snapshotIndex struct {
	services map[objKey]*corev1.Service
	slices   map[objKey][]*discoveryv1.EndpointSlice // by namespace/service name
	secrets  map[objKey]*corev1.Secret
}

// indexSnapshot indexes Services by namespace/name and EndpointSlices by
// namespace and their kubernetes.io/service-name label. Slices without the
// label belong to no Service and are left out.
func indexSnapshot(snap *Snapshot) *snapshotIndex {
	idx := &snapshotIndex{
		services: make(map[objKey]*corev1.Service, len(snap.Services)),
		slices:   make(map[objKey][]*discoveryv1.EndpointSlice, len(snap.EndpointSlices)),
	}
	idx.secrets = make(map[objKey]*corev1.Secret, len(snap.Secrets))
	for i := range snap.Secrets {
		s := &snap.Secrets[i]
		idx.secrets[objKey{s.Namespace, s.Name}] = s
	}
	for i := range snap.Services {
		s := &snap.Services[i]
		idx.services[objKey{s.Namespace, s.Name}] = s
	}
	for i := range snap.EndpointSlices {
		es := &snap.EndpointSlices[i]
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := objKey{es.Namespace, svc}
		idx.slices[k] = append(idx.slices[k], es)
	}
	return idx
}
