package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// testOptions are the Options every golden case is built with.
var testOptions = Options{IngressClass: "kakehi", ControllerName: "kakehi.dev/ingress-controller"}

// readSnapshotFile decodes a multi-document YAML file of IngressClass,
// Ingress, Service and EndpointSlice objects into a Snapshot. Namespaced
// objects without a namespace get "default", as kubectl would give them.
// Unknown kinds and unknown fields are errors, so typos in testdata fail.
func readSnapshotFile(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{}
	for i, doc := range splitYAMLDocuments(data) {
		if err := decodeObject(snap, doc); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
	}
	return snap, nil
}

// splitYAMLDocuments splits data on lines that are exactly "---", dropping
// documents that hold only blank lines and comments.
func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasYAMLContent(cur.String()) {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text())
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasYAMLContent(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

func decodeObject(snap *Snapshot, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "networking.k8s.io/v1 IngressClass": // cluster-scoped
		return appendDecoded(doc, &snap.IngressClasses, nil)
	case "networking.k8s.io/v1 Ingress":
		return appendDecoded(doc, &snap.Ingresses, func(o *networkingv1.Ingress) { defaultNamespace(&o.ObjectMeta) })
	case "v1 Service":
		return appendDecoded(doc, &snap.Services, func(o *corev1.Service) { defaultNamespace(&o.ObjectMeta) })
	case "discovery.k8s.io/v1 EndpointSlice":
		return appendDecoded(doc, &snap.EndpointSlices, func(o *discoveryv1.EndpointSlice) { defaultNamespace(&o.ObjectMeta) })
	case "kakehi.dev/v1alpha1 RoutePolicy":
		return appendDecoded(doc, &snap.RoutePolicies, func(o *v1alpha1.RoutePolicy) { defaultNamespace(&o.ObjectMeta) })
	case "v1 Secret":
		return appendDecoded(doc, &snap.Secrets, func(o *corev1.Secret) { defaultNamespace(&o.ObjectMeta) })
	}
	return fmt.Errorf("unsupported object %q %q", tm.APIVersion, tm.Kind)
}

// appendDecoded decodes doc strictly into a T, applies fix (nil for none)
// and appends it to dst.
func appendDecoded[T any](doc []byte, dst *[]T, fix func(*T)) error {
	var o T
	err := yaml.UnmarshalStrict(doc, &o)
	if fix != nil {
		fix(&o)
	}
	*dst = append(*dst, o)
	return err
}

func defaultNamespace(m *metav1.ObjectMeta) {
	if m.Namespace == "" {
		m.Namespace = "default"
	}
}

// renderProblems formats Problems one per line, as the golden files hold
// them.
func renderProblems(problems []Problem) string {
	var sb strings.Builder
	for _, p := range problems {
		fmt.Fprintf(&sb, "problem %s %s %s %s/%s field=%s message=%s\n",
			p.Type, p.Reason, p.Kind, p.Namespace, p.Name, p.Field, p.Message)
	}
	return sb.String()
}

// testIngress returns an Ingress of class "kakehi" created at second
// created, with one Prefix path per entry of paths, each to svc:80.
func testIngress(ns, name string, created int64, host, svc string, paths ...string) networkingv1.Ingress {
	class := "kakehi"
	prefix := networkingv1.PathTypePrefix
	rule := networkingv1.IngressRule{Host: host}
	rule.HTTP = &networkingv1.HTTPIngressRuleValue{}
	for _, p := range paths {
		rule.HTTP.Paths = append(rule.HTTP.Paths, networkingv1.HTTPIngressPath{
			Path:     p,
			PathType: &prefix,
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80},
			}},
		})
	}
	return networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.Unix(created, 0)},
		Spec:       networkingv1.IngressSpec{IngressClassName: &class, Rules: []networkingv1.IngressRule{rule}},
	}
}

// testService returns a Service with port 80 named "http" and its
// EndpointSlice, whose endpoints are ready at ips on port 8080.
func testService(ns, name string, ips ...string) (corev1.Service, discoveryv1.EndpointSlice) {
	svc := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	portName, port, ready := "http", int32(8080), true
	es := discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name + "-abc",
			Labels: map[string]string{discoveryv1.LabelServiceName: name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}
	for i, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("%s-%d", name, i)},
		})
	}
	return svc, es
}

// testClass is our IngressClass "kakehi".
func testClass() networkingv1.IngressClass {
	return networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "kakehi"},
		Spec:       networkingv1.IngressClassSpec{Controller: testOptions.ControllerName},
	}
}
