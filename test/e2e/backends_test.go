package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

func startPod(t *testing.T, svc, name, ip string, port int) *harness.Pod {
	t.Helper()
	p, err := harness.StartPod(svc, name, ip, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func slice(ns, name, svc string, family discoveryv1.AddressType, ports map[string]int32, pods ...*harness.Pod) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family,
	}
	for pname, port := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(pname), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, harness.Endpoint(p, true))
	}
	return es
}

// TestMultiPortServicesResolveNamedAndNumberedPorts: one Service with two
// ports, each with a named or numbered target port; the Ingress names one
// by number and one by name; each path reaches its own container port.
func TestMultiPortServicesResolveNamedAndNumberedPorts(t *testing.T) {
	ctx := context.Background()
	ip := harness.PodIP(60, 0)
	web := startPod(t, "multi", "multi-0-web", ip, 8080)
	admin := startPod(t, "multi", "multi-0-admin", ip, 9001)
	svc := harness.Service("multiport", "multi")
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("web"), Protocol: corev1.ProtocolTCP},
		{Name: "admin", Port: 9000, TargetPort: intstr.FromInt32(9001), Protocol: corev1.ProtocolTCP},
	}
	ing := harness.Ingress("multiport", "multi", className, harness.Rule("multi.test",
		harness.Path(prefix, "/web", "multi"), // port "http" by name
		pathTo(prefix, "/admin", harness.ServiceBackend("multi", "9000")),
	))
	objs := []client.Object{harness.Namespace("multiport"), svc,
		slice("multiport", "multi-1", "multi", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080, "admin": 9001}, web), ing}
	if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("multi.test", "/web", "multi", "multi-0-web"))
	eventually(t, 10*time.Second, routesTo("multi.test", "/admin", "multi", "multi-0-admin"))
	_ = admin
}

// TestIPv6AndDualStackEndpointsAreReached: a Service with an IPv4 slice and
// an IPv6 slice gets traffic on both families.
func TestIPv6AndDualStackEndpointsAreReached(t *testing.T) {
	ctx := context.Background()
	v4 := startPod(t, "dual", "dual-v4", harness.PodIP(61, 0), 8080)
	v6 := startPod(t, "dual", "dual-v6", harness.PodIPv6(0, 0), 8080)
	ports := map[string]int32{"http": 8080}
	objs := []client.Object{harness.Namespace("dualstack"), harness.Service("dualstack", "dual"),
		slice("dualstack", "dual-v4", "dual", discoveryv1.AddressTypeIPv4, ports, v4),
		slice("dualstack", "dual-v6", "dual", discoveryv1.AddressTypeIPv6, ports, v6),
		harness.Ingress("dualstack", "dual", className, harness.Rule("dual.test", harness.Path(prefix, "/", "dual")))}
	if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("dual.test", "/", "dual", ""))
	eventually(t, 10*time.Second, func() error {
		if v4.Hits() == 0 || v6.Hits() == 0 {
			_, _ = get("dual.test", "/")
			return fmt.Errorf("hits v4=%d v6=%d", v4.Hits(), v6.Hits())
		}
		return nil
	})
}

// TestExternalNameServicesAreOffUnlessAllowed: the shared controller (flag
// off) answers 503 and warns; a controller with
// --allow-external-name-services proxies to the external name.
func TestExternalNameServicesAreOffUnlessAllowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	startPod(t, "ext", "external-0", "127.0.0.1", 18099)
	ext := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "external", Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(18099)}}},
	}
	const class, controller = "kakehi-external", "kakehi.dev/external-test"
	objs := []client.Object{harness.Namespace("external"), ext, harness.IngressClass(class, controller, false),
		harness.Ingress("external", "denied", className, harness.Rule("ext-denied.test", harness.Path(prefix, "/", "ext"))),
		harness.Ingress("external", "allowed", class, harness.Rule("ext-allowed.test", harness.Path(prefix, "/", "ext")))}
	if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, answers("ext-denied.test", "/", http.StatusServiceUnavailable))
	eventually(t, 10*time.Second, warningEvent("external", "denied", "ExternalNameNotAllowed"))
	c, err := harness.StartController(ctx, harness.ControllerOptions{
		Kubeconfig: env.cp.Kubeconfig, PortBase: 8580,
		Args: []string{"--ingress-class", class, "--controller-name", controller, "--allow-external-name-services"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	eventually(t, 10*time.Second, func() error {
		r, err := do(c.HTTPAddr, "GET", "ext-allowed.test", "/", "")
		if err != nil || r.Echo == nil || r.Echo.Pod != "external-0" {
			return fmt.Errorf("not proxied to the external name: %v %+v", err, r)
		}
		return nil
	})
}

// TestPodRemovedMidRequestFinishesWithinGrace: a request in flight to a pod
// whose endpoint is removed completes (the drain grace is 10 s); with a
// short grace, a longer request is ended with a clear 502.
func TestPodRemovedMidRequestFinishesWithinGrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bs := newBackends(t, "midrequest", 1, "mid")
	const class, controller = "kakehi-grace", "kakehi.dev/grace-test"
	if err := harness.CreateAll(ctx, env.cp.Client, harness.IngressClass(class, controller, false),
		harness.Ingress("midrequest", "mid", className, harness.Rule("mid.test", harness.Path(prefix, "/", "mid"))),
		harness.Ingress("midrequest", "mid-short", class, harness.Rule("mid.test", harness.Path(prefix, "/", "mid")))); err != nil {
		t.Fatal(err)
	}
	short, err := harness.StartController(ctx, harness.ControllerOptions{
		Kubeconfig: env.cp.Kubeconfig, PortBase: 8680,
		Args: []string{"--ingress-class", class, "--controller-name", controller, "--proxy-drain-grace", "300ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Stop()
	eventually(t, 10*time.Second, routesTo("mid.test", "/", "mid", ""))
	type outcome struct {
		r   *result
		err error
	}
	inFlight := func(addr, sleep string) chan outcome {
		ch := make(chan outcome, 1)
		go func() {
			r, err := do(addr, "GET", "mid.test", "/?sleep="+sleep, "")
			ch <- outcome{r, err}
		}()
		return ch
	}
	pod := bs.pods["mid"][0]
	before := pod.Hits()
	normal, cut := inFlight(env.ctrl.HTTPAddr, "1500ms"), inFlight(short.HTTPAddr, "5s")
	eventually(t, 5*time.Second, func() error {
		if pod.Hits() < before+2 {
			return fmt.Errorf("requests not at the pod yet")
		}
		return nil
	})
	if err := setSlice("midrequest", "mid-1"); err != nil { // the pod leaves
		t.Fatal(err)
	}
	if o := <-normal; o.err != nil || o.r.Echo == nil {
		t.Errorf("request in flight when its pod left failed within the grace: %v %+v", o.err, o.r)
	}
	o := <-cut
	if o.err != nil || o.r.Status != http.StatusBadGateway || !strings.Contains(o.r.Body, "left the route table") {
		t.Errorf("request past the grace: got %v %+v, want a 502 saying the backend left", o.err, o.r)
	}
}

// pathTo returns a path of the given type to an explicit backend.
func pathTo(kind networkingv1.PathType, path string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(kind), Backend: b}
}
