package chart

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// valuesCase is one entry of the values matrix: values as YAML and what the
// rendered chart must then look like, beyond what every case checks (it
// dry-runs on the API server and passes Pod Security "restricted").
type valuesCase struct {
	name   string
	values string
	check  func(t *testing.T, r *Rendered)
}

// valuesMatrix is every values combination the chart is tested with. The
// closing note of issue 6 lists it; keep the two in step.
var valuesMatrix = []valuesCase{
	{name: "defaults", values: ``, check: checkDefaults},
	{name: "ha-replicas3-hpa-pdb", values: `
replicaCount: 3
autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60}
podDisruptionBudget: {enabled: true, minAvailable: 2, maxUnavailable: null}
`, check: func(t *testing.T, r *Rendered) {
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		if d.Spec.Replicas != nil {
			t.Errorf("replicas = %d with an HPA; want unset so the HPA owns it", *d.Spec.Replicas)
		}
		hpa := into[autoscalingv2.HorizontalPodAutoscaler](t, r.One(t, "HorizontalPodAutoscaler"))
		if *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 12 || hpa.Spec.ScaleTargetRef.Name != d.Name {
			t.Errorf("hpa spec = %s", yamlOf(hpa.Spec))
		}
		pdb := into[policyv1.PodDisruptionBudget](t, r.One(t, "PodDisruptionBudget"))
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MaxUnavailable != nil {
			t.Errorf("pdb spec = %s", yamlOf(pdb.Spec))
		}
	}},
	{name: "default-class", values: `ingressClass: {default: true}`, check: func(t *testing.T, r *Rendered) {
		ic := into[networkingv1.IngressClass](t, r.One(t, "IngressClass"))
		if ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] != "true" {
			t.Errorf("IngressClass annotations = %v", ic.Annotations)
		}
		if !strings.Contains(r.Notes, "default IngressClass") {
			t.Errorf("NOTES do not say the class is the default:\n%s", r.Notes)
		}
	}},
	{name: "service-monitor", values: `metrics: {serviceMonitor: {enabled: true, interval: 15s}}`, check: func(t *testing.T, r *Rendered) {
		sm := r.One(t, "ServiceMonitor")
		sel := nestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var metricsSvc *corev1.Service
		for _, u := range r.OfKind("Service") {
			if s := into[corev1.Service](t, u); labelsMatch(sel, s.Labels) {
				if metricsSvc != nil {
					t.Fatalf("ServiceMonitor selector %v matches two Services", sel)
				}
				metricsSvc = s
			}
		}
		if metricsSvc == nil || metricsSvc.Spec.Ports[0].Name != "metrics" {
			t.Fatalf("ServiceMonitor selector %v does not select the metrics Service", sel)
		}
		eps, _ := sm.Object["spec"].(map[string]any)["endpoints"].([]any)
		if len(eps) != 1 || eps[0].(map[string]any)["port"] != "metrics" || eps[0].(map[string]any)["interval"] != "15s" {
			t.Errorf("endpoints = %v", eps)
		}
	}},
	{name: "watch-namespace", values: `controller: {watchNamespace: apps, defaultTLSSecret: certs/wildcard}`, check: func(t *testing.T, r *Rendered) {
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		wantArgs(t, d, "--watch-namespace=apps", "--default-tls-secret=certs/wildcard")
		cr := into[rbacv1.ClusterRole](t, r.One(t, "ClusterRole"))
		for _, rule := range cr.Rules {
			for _, res := range rule.Resources {
				if res != "ingressclasses" && res != "events" {
					t.Errorf("ClusterRole grants %s cluster-wide although only namespace apps is watched", res)
				}
			}
		}
		roles := map[string]bool{}
		for _, u := range r.OfKind("Role") {
			roles[u.GetNamespace()+"/"+u.GetName()] = true
		}
		for _, want := range []string{"apps/kakehi", "certs/kakehi-default-tls", releaseNS + "/kakehi-publish-service", releaseNS + "/kakehi-leader-election"} {
			if !roles[want] {
				t.Errorf("no Role %s; have %v", want, roles)
			}
		}
	}},
	{name: "external-traffic-local", values: `service: {externalTrafficPolicy: Local}`, check: func(t *testing.T, r *Rendered) {
		s := proxyService(t, r)
		if s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("externalTrafficPolicy = %q", s.Spec.ExternalTrafficPolicy)
		}
	}},
	{name: "leader-election-off", values: `leaderElection: {enabled: false}`, check: func(t *testing.T, r *Rendered) {
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		wantArgs(t, d, "--leader-elect=false")
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			if strings.HasPrefix(a, "--leader-election-") {
				t.Errorf("arg %s with leader election off", a)
			}
		}
		if roles := r.OfKind("Role"); len(roles) != 0 {
			t.Errorf("Roles rendered with leader election off: %v", r.Kinds())
		}
	}},
	{name: "prestop-and-grace", values: `
shutdown: {preStopSleepSeconds: 5, delaySeconds: 3, graceSeconds: 30}
terminationGracePeriodSeconds: 45
`, check: func(t *testing.T, r *Rendered) {
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		c := d.Spec.Template.Spec.Containers[0]
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
			t.Errorf("preStop = %s", yamlOf(c.Lifecycle))
		}
		if got := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; got != 45 {
			t.Errorf("terminationGracePeriodSeconds = %d, want 45", got)
		}
		wantArgs(t, d, "--shutdown-delay=3s", "--shutdown-grace=30s")
	}},
	{name: "clusterip-digest-no-publish", values: `
service: {type: ClusterIP}
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
controller: {publishService: false, publishAddress: "203.0.113.7"}
`, check: func(t *testing.T, r *Rendered) {
		s := proxyService(t, r)
		if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("service type %s, externalTrafficPolicy %q", s.Spec.Type, s.Spec.ExternalTrafficPolicy)
		}
		d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
		if img := d.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
			t.Errorf("image = %s, want pinned by digest", img)
		}
		wantArgs(t, d, "--publish-address=203.0.113.7")
	}},
}

// checkDefaults pins what a plain `helm install` creates.
func checkDefaults(t *testing.T, r *Rendered) {
	want := []string{
		"ClusterRole//kakehi", "ClusterRoleBinding//kakehi",
		"Deployment/" + releaseNS + "/kakehi", "IngressClass//kakehi",
		"PodDisruptionBudget/" + releaseNS + "/kakehi",
		"Role/" + releaseNS + "/kakehi-leader-election", "RoleBinding/" + releaseNS + "/kakehi-leader-election",
		"Service/" + releaseNS + "/kakehi", "Service/" + releaseNS + "/kakehi-metrics",
		"ServiceAccount/" + releaseNS + "/kakehi",
	}
	if got := r.Kinds(); !slices.Equal(got, want) {
		t.Errorf("objects:\n got %v\nwant %v", got, want)
	}
	d := into[appsv1.Deployment](t, r.One(t, "Deployment"))
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", *d.Spec.Replicas)
	}
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	wantArgs(t, d, "--ingress-class=kakehi", "--controller-name=kakehi.dev/ingress-controller",
		"--http-addr=:8080", "--https-addr=:8443", "--health-addr=:8081", "--metrics-addr=:9090",
		"--leader-elect=true", "--leader-election-namespace="+releaseNS,
		"--publish-service="+releaseNS+"/kakehi", "--allow-external-name-services=false",
		"--shutdown-delay=5s", "--shutdown-grace=20s")
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "health" {
			t.Errorf("%s probe = %s, want an HTTP GET on the health port", name, yamlOf(p))
		}
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probe paths: readiness %s, liveness %s", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	// delay 5 + grace 20 + margin 5: the kubelet must not kill a draining replica.
	if got := *spec.TerminationGracePeriodSeconds; got != 30 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 30", got)
	}
	if c.Lifecycle != nil {
		t.Errorf("lifecycle = %s, want none (the shutdown delay is in-process)", yamlOf(c.Lifecycle))
	}
	if len(spec.TopologySpreadConstraints) != 2 {
		t.Errorf("topology spread = %s", yamlOf(spec.TopologySpreadConstraints))
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		if !labelsMatch(tsc.LabelSelector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("topology spread selector %v does not select the pods", tsc.LabelSelector.MatchLabels)
		}
	}
	s := proxyService(t, r)
	ports := map[string][2]string{}
	for _, p := range s.Spec.Ports {
		ports[p.Name] = [2]string{itoa(p.Port), p.TargetPort.String()}
	}
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer || ports["http"] != [2]string{"80", "http"} || ports["https"] != [2]string{"443", "https"} {
		t.Errorf("proxy service = %s", yamlOf(s.Spec))
	}
	if !labelsMatch(s.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("service selector %v does not select the pods %v", s.Spec.Selector, d.Spec.Template.Labels)
	}
	if ic := into[networkingv1.IngressClass](t, r.One(t, "IngressClass")); len(ic.Annotations) != 0 || ic.Spec.Controller != "kakehi.dev/ingress-controller" {
		t.Errorf("IngressClass = %s", yamlOf(ic))
	}
	if !strings.Contains(r.Notes, `ingressClassName: kakehi`) {
		t.Errorf("NOTES lack the class name:\n%s", r.Notes)
	}
}
