package harness

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PodIP returns the address of pod number n (0-based) of service number s
// in PodRange: 198.18.<1+s>.<1+n>.
func PodIP(s, n int) string { return fmt.Sprintf("198.18.%d.%d", 1+s, 1+n) }

// IngressClass returns our IngressClass named name for controller.
func IngressClass(name, controller string, isDefault bool) *networkingv1.IngressClass {
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.IngressClassSpec{Controller: controller},
	}
	if isDefault {
		ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return ic
}

// Service returns a selector-less Service named name with one port "http"
// (port 80 → target port named "http").
func Service(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// EndpointSlice returns a slice for service svc holding pods, all ready,
// on the port named "http".
func EndpointSlice(ns, name, svc string, pods ...*Pod) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	port := int32(8080)
	for _, p := range pods {
		port = int32(p.Port)
		es.Endpoints = append(es.Endpoints, Endpoint(p, true))
	}
	es.Ports = []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}}
	return es
}

// Endpoint returns the EndpointSlice entry of pod p with the given ready
// condition.
func Endpoint(p *Pod, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{p.IP},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: p.Name},
	}
}

// Ingress returns an Ingress of class class with the given rules.
func Ingress(ns, name, class string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.IngressSpec{Rules: rules},
	}
	if class != "" {
		ing.Spec.IngressClassName = ptr.To(class)
	}
	return ing
}

// Rule returns a rule for host with the given paths.
func Rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths},
	}}
}

// Path returns a path of the given type to service svc's port "http".
func Path(kind networkingv1.PathType, path, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(kind), Backend: ServiceBackend(svc, "http")}
}

// ServiceBackend returns a backend for svc's port given as a name or, when
// it parses as a number, a number.
func ServiceBackend(svc, port string) networkingv1.IngressBackend {
	b := networkingv1.IngressServiceBackend{Name: svc}
	if n, err := strconv.Atoi(port); err == nil {
		b.Port.Number = int32(n)
	} else {
		b.Port.Name = port
	}
	return networkingv1.IngressBackend{Service: &b}
}

// Namespace returns a namespace object.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// CreateAll creates objs in order and stops at the first error.
func CreateAll(ctx context.Context, c client.Client, objs ...client.Object) error {
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
