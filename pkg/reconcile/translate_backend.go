package reconcile

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kakehi/kakehi/pkg/route"
)

// clusterResult is a cluster resolved once per Build, and why it has no
// backends when that is an error in the Ingress.
type clusterResult struct {
	cluster *route.Cluster
	reason  string // Problem reason, "" when the backend resolved
	field   string // suffix of the backend field that the Problem names
	detail  string // message detail for the Problem
}

// portAsWritten returns the Ingress's port: the number in decimal, or the
// name.
func portAsWritten(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// cluster returns the cluster for a checked service backend in namespace
// ns, resolving it on first use. Every route to the same
// "namespace/service:port" shares one cluster, so they share its
// round-robin state.
func (t *translator) cluster(ns string, svc *networkingv1.IngressServiceBackend) *clusterResult {
	key := clusterKey{objKey{ns, svc.Name}, svc.Port}
	if cr, ok := t.clusters[key]; ok {
		return cr
	}
	name := ns + "/" + svc.Name + ":" + portAsWritten(svc.Port)
	cr := t.resolve(name, key.service, svc.Port)
	t.clusters[key] = cr
	return cr
}

// clusterKey identifies a cluster: a Service and the port as the Ingress
// wrote it.
type clusterKey struct {
	service objKey
	port    networkingv1.ServiceBackendPort
}

// resolve builds the cluster name for the Service key and the Ingress port
// p: Service → ServicePort → EndpointSlice port of the same name → ready
// endpoints.
func (t *translator) resolve(name string, key objKey, p networkingv1.ServiceBackendPort) *clusterResult {
	fail := func(reason, field, format string, args ...any) *clusterResult {
		detail := fmt.Sprintf(format, args...)
		return &clusterResult{cluster: route.NewCluster(name, nil, detail), reason: reason, field: field, detail: detail}
	}
	svc, ok := t.idx.services[key]
	if !ok {
		return fail(ReasonServiceNotFound, ".service.name", "service %q not found", key.String())
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if !t.allowExternalName {
			return fail(ReasonExternalNameNotAllowed, ".service.name",
				"service %q is of type ExternalName, which is not allowed as a backend (see --allow-external-name-services)", key.String())
		}
		return t.externalName(name, key, svc, p, fail)
	}
	sp, ok := servicePort(svc, p)
	if !ok {
		if p.Name != "" {
			return fail(ReasonPortNotFound, ".service.port.name", "service %q has no TCP port named %q", key.String(), p.Name)
		}
		return fail(ReasonPortNotFound, ".service.port.number", "service %q has no TCP port %d", key.String(), p.Number)
	}
	proto := appProtocol(sp)
	backends := t.backends(t.idx.slices[key], sp.Name)
	if len(backends) == 0 {
		return &clusterResult{cluster: route.NewCluster(name, nil, fmt.Sprintf("service %q port %q has no ready endpoints", key.String(), portAsWritten(p))).WithProtocol(proto)}
	}
	return &clusterResult{cluster: route.NewCluster(name, backends, "").WithProtocol(proto)}
}

// servicePort finds the TCP ServicePort that p names: by .port for a
// number, by .name for a name.
func servicePort(svc *corev1.Service, p networkingv1.ServiceBackendPort) (*corev1.ServicePort, bool) {
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Name != "" && sp.Name == p.Name || p.Name == "" && sp.Port == p.Number {
			return sp, true
		}
	}
	return nil, false
}

// endpoint is one usable address of a Service port, as found in a slice.
type endpoint struct {
	addr  string                  // "ip:port"
	pod   *corev1.ObjectReference // the Pod behind it, or nil
	ready bool                    // ready; else serving (terminating but still serving)
}

// backends returns the backends of the EndpointSlice port named portName
// across the slices in list, de-duplicated by address and sorted by
// address. It uses the ready endpoints (conditions.ready nil or true); when
// there are none, it falls back to the endpoints with conditions.serving
// true, the terminating endpoints that still serve, as kube-proxy does.
// FQDN slices are skipped.
func (t *translator) backends(list []*discoveryv1.EndpointSlice, portName string) []*route.Backend {
	n := 0
	for _, es := range list {
		n += len(es.Endpoints)
	}
	eps := make([]endpoint, 0, n)
	anyReady := false
	for _, es := range list {
		port, ok := slicePort(es, portName)
		if !ok {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			c := ep.Conditions
			ready := c.Ready == nil || *c.Ready
			if !ready && (c.Serving == nil || !*c.Serving) {
				continue
			}
			addr, ok := endpointAddr(ep, es.AddressType, port)
			if !ok {
				continue
			}
			anyReady = anyReady || ready
			eps = append(eps, endpoint{addr: addr, pod: podRef(ep), ready: ready})
		}
	}
	if anyReady {
		eps = slices.DeleteFunc(eps, func(e endpoint) bool { return !e.ready })
	}
	slices.SortFunc(eps, compareEndpoints)
	out := make([]*route.Backend, 0, len(eps))
	for i, e := range eps {
		if i > 0 && eps[i-1].addr == e.addr {
			continue // a duplicate from another slice: the first is the one to keep
		}
		out = append(out, t.gen.Backend(e.addr, podName(e.pod)))
	}
	return out
}

// compareEndpoints orders endpoints by address; for one address, a known
// pod before an unknown one, then by pod namespace/name, so that duplicates across
// slices resolve the same way whatever the slice order.
func compareEndpoints(a, b endpoint) int {
	if c := strings.Compare(a.addr, b.addr); c != 0 {
		return c
	}
	if (a.pod == nil) != (b.pod == nil) {
		if a.pod == nil {
			return 1
		}
		return -1
	}
	if a.pod == nil {
		return 0
	}
	if c := strings.Compare(a.pod.Namespace, b.pod.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.pod.Name, b.pod.Name)
}

// slicePort returns the port number of the slice's port named name (the
// ServicePort's name; "" for a Service's single unnamed port). The number
// is the already-resolved targetPort, so named targetPorts need no work
// here. It reports false for FQDN slices and when the slice has no such
// port.
func slicePort(es *discoveryv1.EndpointSlice, name string) (int, bool) {
	if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
		return 0, false
	}
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn == name && p.Port != nil && *p.Port >= 1 && *p.Port <= 65535 {
			return int(*p.Port), true
		}
	}
	return 0, false
}

// endpointAddr returns "ip:port" for the endpoint's first address (the
// addresses of one endpoint are fungible), in canonical form with IPv6 in
// brackets, exactly as net.JoinHostPort(ip.String(), port) would, or false
// when the address is not an IP of the slice's address type.
func endpointAddr(ep *discoveryv1.Endpoint, at discoveryv1.AddressType, port int) (string, bool) {
	if len(ep.Addresses) == 0 {
		return "", false
	}
	ip, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil || ip.Zone() != "" {
		return "", false
	}
	if at == discoveryv1.AddressTypeIPv4 && !ip.Is4() || at == discoveryv1.AddressTypeIPv6 && !ip.Is6() {
		return "", false
	}
	return netip.AddrPortFrom(ip, uint16(port)).String(), true
}

// podRef returns the endpoint's targetRef when it names a Pod, else nil.
func podRef(ep *discoveryv1.Endpoint) *corev1.ObjectReference {
	if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" && ref.Name != "" {
		return ref
	}
	return nil
}

// podName returns "namespace/name" of a Pod reference, or "" for nil.
func podName(ref *corev1.ObjectReference) string {
	if ref == nil {
		return ""
	}
	return ref.Namespace + "/" + ref.Name
}

// externalName resolves an ExternalName Service to one backend whose address
// is the external DNS name and the port: the Service port's numeric
// targetPort, else its port, else (no Service ports) the Ingress's port
// number. The proxy resolves the name when it connects.
func (t *translator) externalName(name string, key objKey, svc *corev1.Service, p networkingv1.ServiceBackendPort,
	fail func(reason, field, format string, args ...any) *clusterResult) *clusterResult {
	host := strings.TrimSuffix(svc.Spec.ExternalName, ".")
	if len(validation.IsDNS1123Subdomain(host)) > 0 {
		return fail(ReasonInvalidBackend, ".service.name", "service %q has an invalid externalName %q", key.String(), svc.Spec.ExternalName)
	}
	port := int(p.Number)
	if sp, ok := servicePort(svc, p); ok {
		port = int(sp.Port)
		if tp := sp.TargetPort.IntValue(); tp > 0 {
			port = tp
		}
	} else if p.Name != "" || len(svc.Spec.Ports) > 0 {
		return fail(ReasonPortNotFound, ".service.port", "service %q has no TCP port %q", key.String(), portAsWritten(p))
	}
	b := t.gen.Backend(net.JoinHostPort(host, strconv.Itoa(port)), "")
	return &clusterResult{cluster: route.NewCluster(name, []*route.Backend{b}, "")}
}

// AppProtocolH2C is the Service port appProtocol that makes backends be
// reached over HTTP/2 with prior knowledge (gRPC, for instance).
const AppProtocolH2C = "kubernetes.io/h2c"

// appProtocol maps a Service port's appProtocol to the backend protocol.
func appProtocol(sp *corev1.ServicePort) route.BackendProtocol {
	if sp.AppProtocol != nil && *sp.AppProtocol == AppProtocolH2C {
		return route.ProtocolH2C
	}
	return route.ProtocolHTTP1
}
