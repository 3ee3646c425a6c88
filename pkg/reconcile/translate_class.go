package reconcile

import (
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	networkingv1beta1 "k8s.io/api/networking/v1beta1"
)

// classIndex answers "is this Ingress ours" for one set of IngressClasses.
type classIndex struct {
	opts Options
	// ours holds the names of the IngressClasses whose spec.controller is
	// opts.ControllerName.
	ours map[string]bool
	// isDefault is true when one of ours carries
	// ingressclass.kubernetes.io/is-default-class: "true".
	isDefault bool
}

func newClassIndex(classes []networkingv1.IngressClass, opts Options) *classIndex {
	ci := &classIndex{opts: opts, ours: make(map[string]bool)}
	if opts.ControllerName == "" {
		return ci
	}
	for i := range classes {
		c := &classes[i]
		if c.Spec.Controller != opts.ControllerName {
			continue
		}
		ci.ours[c.Name] = true
		if c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			ci.isDefault = true
		}
	}
	return ci
}

// isOurs implements IsOurs. An empty spec.ingressClassName or an empty
// legacy annotation counts as not set.
func (ci *classIndex) isOurs(ing *networkingv1.Ingress) bool {
	if name := ing.Spec.IngressClassName; name != nil && *name != "" {
		return ci.ours[*name]
	}
	if legacy := ing.Annotations[networkingv1beta1.AnnotationIngressClass]; legacy != "" {
		return ci.opts.IngressClass != "" && legacy == ci.opts.IngressClass
	}
	return ci.isDefault
}

// IsOurs reports whether ing is served by us given the IngressClasses in
// classes. It is ours when spec.ingressClassName names an IngressClass whose
// spec.controller is opts.ControllerName; or, without ingressClassName, when
// the legacy kubernetes.io/ingress.class annotation equals opts.IngressClass;
// or, with neither, when one of our IngressClasses is annotated
// ingressclass.kubernetes.io/is-default-class: "true". An ingressClassName
// naming an unknown class or another controller's class is never ours.
func IsOurs(ing *networkingv1.Ingress, classes []networkingv1.IngressClass, opts Options) bool {
	return newClassIndex(classes, opts).isOurs(ing)
}

// Ours returns the Ingresses of snap that are ours (see IsOurs), sorted by
// precedence: oldest creationTimestamp first, then namespace/name. The
// pointers point into snap.Ingresses.
func Ours(snap *Snapshot, opts Options) []*networkingv1.Ingress {
	ci := newClassIndex(snap.IngressClasses, opts)
	var out []*networkingv1.Ingress
	for i := range snap.Ingresses {
		if ing := &snap.Ingresses[i]; ci.isOurs(ing) {
			out = append(out, ing)
		}
	}
	slices.SortFunc(out, comparePrecedence)
	return out
}

// comparePrecedence orders Ingresses by creationTimestamp, then namespace,
// then name: the first takes precedence in a conflict.
func comparePrecedence(a, b *networkingv1.Ingress) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}
