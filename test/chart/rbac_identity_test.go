package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/test/harness"
)

var (
	ingressesGVR  = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}
	classesGVR    = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingressclasses"}
	servicesGVR   = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	slicesGVR     = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// installRBAC creates, for real, the ServiceAccount and every RBAC object
// of a rendered release, and removes them when the test ends.
func installRBAC(t *testing.T, r *Rendered) (saNamespace, saName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range r.Objects {
		switch o.GetKind() {
		case "ServiceAccount":
			saNamespace, saName = o.GetNamespace(), o.GetName()
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		obj := o.DeepCopy()
		if err := env.cp.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		t.Cleanup(func() { _ = env.cp.Client.Delete(context.Background(), obj) })
	}
	if saName == "" {
		t.Fatal("no ServiceAccount rendered")
	}
	waitRBACActive(t, ctx, r, harness.ServiceAccountUser(saNamespace, saName))
	return saNamespace, saName
}

// waitRBACActive waits until the API server's authorizer, which reads RBAC
// objects through an informer, grants user the first permission of every
// role r renders, so that the checks that follow do not race its cache.
func waitRBACActive(t *testing.T, ctx context.Context, r *Rendered, user envtest.User) {
	t.Helper()
	var probes []authorizationv1.ResourceAttributes
	for _, o := range r.Objects {
		var rules []rbacv1.PolicyRule
		ns := "apps"
		switch o.GetKind() {
		case "ClusterRole":
			rules = into[rbacv1.ClusterRole](t, o).Rules
		case "Role":
			rules, ns = into[rbacv1.Role](t, o).Rules, o.GetNamespace()
		default:
			continue
		}
		rule := rules[0]
		resource, sub, _ := strings.Cut(rule.Resources[0], "/")
		name := ""
		if len(rule.ResourceNames) > 0 {
			name = rule.ResourceNames[0]
		}
		probes = append(probes, authorizationv1.ResourceAttributes{Namespace: ns, Verb: rule.Verbs[0],
			Group: rule.APIGroups[0], Resource: resource, Subresource: sub, Name: name})
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, p := range probes {
		for {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user.Name, Groups: user.Groups, ResourceAttributes: &p}}
			got, err := env.cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("RBAC never granted %+v: %v", p, ctx.Err())
			case <-tick.C:
			}
		}
	}
}

// actor makes requests as the controller's ServiceAccount.
type actor struct {
	t    *testing.T
	ctx  context.Context
	id   *harness.Identity
	dyn  dynamic.Interface
	kube kubernetes.Interface
}

func newActor(t *testing.T, ctx context.Context, ns, name string) *actor {
	t.Helper()
	id, err := env.cp.AsServiceAccount(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(id.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(id.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &actor{t: t, ctx: ctx, id: id, dyn: dyn, kube: kube}
}

// expect fails the test unless err is nil (allowed) or Forbidden (denied),
// as wanted.
func (a *actor) expect(allowed bool, what string, err error) {
	a.t.Helper()
	switch {
	case allowed && err != nil:
		a.t.Errorf("%s: want allowed, got %v", what, err)
	case !allowed && !apierrors.IsForbidden(err):
		a.t.Errorf("%s: want Forbidden, got %v", what, err)
	}
}

// listWatch lists and starts a watch of gvr in ns ("" = all namespaces),
// with an optional metadata.name field selector, as an informer would.
func (a *actor) listWatch(allowed bool, gvr schema.GroupVersionResource, ns, name string) {
	a.t.Helper()
	opts := metav1.ListOptions{}
	if name != "" {
		opts.FieldSelector = "metadata.name=" + name
	}
	what := fmt.Sprintf("list %s in %q (name %q)", gvr.Resource, ns, name)
	_, err := a.dyn.Resource(gvr).Namespace(ns).List(a.ctx, opts)
	a.expect(allowed, what, err)
	w, err := a.dyn.Resource(gvr).Namespace(ns).Watch(a.ctx, opts)
	a.expect(allowed, "watch"+what[4:], err)
	if w != nil {
		w.Stop()
	}
}

// rbacFixtures are objects the identity acts on: an Ingress and a
// RoutePolicy in apps (created as admin, once).
func rbacFixtures(t *testing.T, ctx context.Context) {
	t.Helper()
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	rp := &v1alpha1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"},
		Spec: v1alpha1.RoutePolicySpec{TargetRefs: []v1alpha1.LocalPolicyTargetReference{ref("Ingress", "web")}}}
	pc := policyClient(t)
	for _, o := range []client.Object{ing, rp} {
		if err := pc.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// TestRBACActingAsServiceAccount installs the chart's RBAC for real and
// acts as its ServiceAccount: everything the controller does must be
// allowed, and reading Secrets beyond the grant, writing specs, deleting
// anything or touching another Lease must be Forbidden.
func TestRBACActingAsServiceAccount(t *testing.T) {
	ensureNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rbacFixtures(t, ctx)
	cases := []struct {
		name, values string
		watchNS      string // "" = all namespaces
		lease        string // "kakehi-" + ingressClass.name
	}{
		{"all-namespaces", `ingressClass: {name: rbac-all}`, "", "kakehi-rbac-all"},
		{"watch-namespace", `ingressClass: {name: rbac-ns}
controller: {watchNamespace: apps, defaultTLSSecret: certs/wildcard}`, "apps", "kakehi-rbac-ns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustRender(t, "rbac-"+c.name, c.values)
			ns, name := installRBAC(t, r)
			a := newActor(t, ctx, ns, name)
			all := c.watchNS == ""

			// Reads the cache and the SecretWatcher make.
			for _, gvr := range []schema.GroupVersionResource{ingressesGVR, servicesGVR, slicesGVR, secretsGVR, routePGVR} {
				a.listWatch(true, gvr, "apps", "")
				a.listWatch(all, gvr, "", "")
				a.listWatch(all, gvr, "other", "")
			}
			a.listWatch(true, classesGVR, "", "")
			a.listWatch(true, servicesGVR, releaseNS, "") // --publish-service
			a.listWatch(true, secretsGVR, "certs", "wildcard")
			a.listWatch(all, secretsGVR, "certs", "")
			a.listWatch(all, secretsGVR, "certs", "another")

			// Secrets: never by get, never written.
			_, err := a.dyn.Resource(secretsGVR).Namespace("apps").Get(ctx, "web-tls", metav1.GetOptions{})
			a.expect(false, "get secret", err)
			_, err = a.kube.CoreV1().Secrets("apps").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			a.expect(false, "create secret", err)

			// Writes the controller makes.
			a.actStatus(ctx)
			a.actEvents(ctx, "apps", true)
			a.actEvents(ctx, "default", true) // IngressClass events
			a.actLease(ctx, c.lease)

			// Nothing else: no spec writes, no deletes, no other kinds.
			ingresses := a.dyn.Resource(ingressesGVR).Namespace("apps")
			a.expect(false, "delete ingress", ingresses.Delete(ctx, "web", metav1.DeleteOptions{}))
			a.expect(false, "deletecollection ingresses", ingresses.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
			_, err = ingresses.Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
			a.expect(false, "patch ingress spec/metadata", err)
			a.expect(false, "delete service", a.dyn.Resource(servicesGVR).Namespace("apps").Delete(ctx, "web", metav1.DeleteOptions{}))
			a.expect(false, "delete routepolicy", a.dyn.Resource(routePGVR).Namespace("apps").Delete(ctx, "web", metav1.DeleteOptions{}))
			a.expect(false, "delete ingressclass", a.dyn.Resource(classesGVR).Delete(ctx, "kakehi", metav1.DeleteOptions{}))
			a.listWatch(false, podsGVR, "apps", "")
			a.listWatch(false, configMapsGVR, releaseNS, "")
		})
	}
}

// actStatus patches the status of an Ingress and a RoutePolicy (allowed)
// and tries a full status update of the Ingress (not granted: the code
// patches).
func (a *actor) actStatus(ctx context.Context) {
	a.t.Helper()
	ingStatus := []byte(`{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.10"}]}}}`)
	_, err := a.dyn.Resource(ingressesGVR).Namespace("apps").Patch(ctx, "web", types.MergePatchType, ingStatus, metav1.PatchOptions{}, "status")
	a.expect(true, "patch ingresses/status", err)
	ing, err := a.kube.NetworkingV1().Ingresses("apps").Get(ctx, "web", metav1.GetOptions{})
	a.expect(false, "get ingress (the cache lists, never gets)", err)
	if ing == nil || ing.Name == "" {
		ing = &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}}
	}
	_, err = a.kube.NetworkingV1().Ingresses("apps").UpdateStatus(ctx, ing, metav1.UpdateOptions{})
	a.expect(false, "update ingresses/status", err)
	rpStatus := fmt.Appendf(nil, `{"status":{"conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":%q}]}}`,
		time.Now().UTC().Format(time.RFC3339))
	_, err = a.dyn.Resource(routePGVR).Namespace("apps").Patch(ctx, "web", types.MergePatchType, rpStatus, metav1.PatchOptions{}, "status")
	a.expect(true, "patch routepolicies/status", err)
}

// actEvents creates and patches an events.k8s.io Event in ns, and tries to
// delete it.
func (a *actor) actEvents(ctx context.Context, ns string, allowed bool) {
	a.t.Helper()
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: ns, GenerateName: "kakehi-rbac-"},
		EventTime:           metav1.NowMicro(),
		ReportingController: "kakehi.dev/ingress-controller", ReportingInstance: "test",
		Action: "Translate", Reason: "RBACTest", Type: corev1.EventTypeNormal, Note: "rbac test",
		Regarding: corev1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Namespace: "apps", Name: "web"},
	}
	created, err := a.kube.EventsV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
	a.expect(allowed, "create event in "+ns, err)
	if err != nil {
		return
	}
	_, err = a.kube.EventsV1().Events(ns).Patch(ctx, created.Name, types.StrategicMergePatchType,
		[]byte(`{"series":{"count":2,"lastObservedTime":"`+metav1.NowMicro().UTC().Format("2006-01-02T15:04:05.000000Z07:00")+`"}}`), metav1.PatchOptions{})
	a.expect(allowed, "patch event in "+ns, err)
	a.expect(false, "delete event", a.kube.EventsV1().Events(ns).Delete(ctx, created.Name, metav1.DeleteOptions{}))
}

// actLease runs the Lease calls of client-go's LeaseLock on the
// controller's own Lease, and checks every other Lease is out of reach.
func (a *actor) actLease(ctx context.Context, leaseName string) {
	a.t.Helper()
	leases := a.kube.CoordinationV1().Leases(releaseNS)
	_, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		a.t.Errorf("get own Lease before it exists: want NotFound, got %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("rbac-test"), LeaseDurationSeconds: ptr.To[int32](15)}}
	created, err := leases.Create(ctx, lease, metav1.CreateOptions{})
	a.expect(true, "create own Lease", err)
	if err != nil {
		return
	}
	defer func() {
		_ = env.cp.Clientset.CoordinationV1().Leases(releaseNS).Delete(context.Background(), leaseName, metav1.DeleteOptions{})
	}()
	got, err := leases.Get(ctx, leaseName, metav1.GetOptions{})
	a.expect(true, "get own Lease", err)
	if err == nil {
		got.Spec.RenewTime = ptr.To(metav1.NowMicro())
		_, err = leases.Update(ctx, got, metav1.UpdateOptions{})
		a.expect(true, "update own Lease", err)
	}
	a.expect(false, "delete own Lease", leases.Delete(ctx, created.Name, metav1.DeleteOptions{}))
	_, err = leases.Get(ctx, "kube-scheduler", metav1.GetOptions{})
	a.expect(false, "get another Lease", err)
	_, err = leases.List(ctx, metav1.ListOptions{})
	a.expect(false, "list Leases", err)
	other := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: leaseName}}
	_, err = a.kube.CoordinationV1().Leases("other").Create(ctx, other, metav1.CreateOptions{})
	a.expect(false, "create a Lease in another namespace", err)
}

// TestRBACSubjectAccessMatrix asks the API server, for the default install,
// whether the ServiceAccount may do each verb on each resource in a
// workload namespace, and compares with allowedGrants: any extra
// permission, and any missing one, fails.
func TestRBACSubjectAccessMatrix(t *testing.T) {
	ensureNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := mustRender(t, "sar", `ingressClass: {name: sar}`)
	ns, name := installRBAC(t, r)
	user := harness.ServiceAccountUser(ns, name)
	resources := []grant{
		{"networking.k8s.io", "ingresses", ""}, {"networking.k8s.io", "ingresses/status", ""},
		{"networking.k8s.io", "ingressclasses", ""}, {"", "services", ""}, {"", "services/status", ""},
		{"discovery.k8s.io", "endpointslices", ""}, {"", "endpoints", ""}, {"", "secrets", ""},
		{"", "configmaps", ""}, {"", "pods", ""}, {"", "pods/exec", ""}, {"", "serviceaccounts/token", ""},
		{"", "events", ""}, {"events.k8s.io", "events", ""}, {"coordination.k8s.io", "leases", ""},
		{"kakehi.dev", "routepolicies", ""}, {"kakehi.dev", "routepolicies/status", ""},
		{"apps", "deployments", ""}, {"rbac.authorization.k8s.io", "roles", ""}, {"rbac.authorization.k8s.io", "clusterroles", ""},
		{"apiextensions.k8s.io", "customresourcedefinitions", ""},
	}
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "impersonate", "escalate", "bind"}
	for _, res := range resources {
		for _, verb := range verbs {
			resource, sub, _ := strings.Cut(res.resource, "/")
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user.Name, Groups: user.Groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "apps", Verb: verb, Group: res.group, Resource: resource, Subresource: sub},
			}}
			got, err := env.cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			u, listed := allowedGrants[grant{res.group, res.resource, verb}]
			want := listed && u.scope == "cluster"
			if got.Status.Allowed != want {
				t.Errorf("%s %q %s in apps: allowed=%v, want %v (%s)", verb, res.group, res.resource, got.Status.Allowed, want, got.Status.Reason)
			}
		}
	}
}
