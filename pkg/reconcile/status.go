package reconcile

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// StatusWriter writes status.loadBalancer.ingress on every Ingress we serve
// and clears it from Ingresses we stop serving. It runs only on the leader
// when leader election is on. A write is skipped when the status already
// holds the wanted addresses.
type StatusWriter struct {
	Client  client.Client // reads from the cache, writes to the API server
	Options Options
	// PublishService, when set, is the Service whose load-balancer
	// addresses (else cluster IPs) are published.
	PublishService types.NamespacedName
	// PublishAddresses are published when PublishService is not set.
	PublishAddresses []networkingv1.IngressLoadBalancerIngress
	// Leader gates the writes; nil means always write.
	Leader *Leader
}

// ParsePublishAddresses parses a comma-separated list of IPs and hostnames
// (the --publish-address flag) into status entries.
func ParsePublishAddresses(list string) ([]networkingv1.IngressLoadBalancerIngress, error) {
	var out []networkingv1.IngressLoadBalancerIngress
	for _, raw := range strings.Split(list, ",") {
		a := strings.TrimSpace(raw)
		switch {
		case a == "":
			continue
		case net.ParseIP(a) != nil:
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		case len(validation.IsDNS1123Subdomain(a)) == 0:
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		default:
			return nil, fmt.Errorf("%q is neither an IP address nor a DNS hostname", a)
		}
	}
	return out, nil
}

// Enabled reports whether there is anything to publish.
func (w *StatusWriter) Enabled() bool {
	return w.PublishService.Name != "" || len(w.PublishAddresses) > 0
}

// SetupWithManager registers the writer: it reconciles each Ingress, and all
// Ingresses again when an IngressClass or the published Service changes.
func (w *StatusWriter) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(w.allIngresses)
	publishSvc := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []crreconcile.Request {
		if o.GetNamespace() != w.PublishService.Namespace || o.GetName() != w.PublishService.Name {
			return nil
		}
		return w.allIngresses(ctx, o)
	})
	return statusController(mgr, "kakehi-status", w.Leader, all).
		For(&networkingv1.Ingress{}).
		Watches(&networkingv1.IngressClass{}, all).
		Watches(&corev1.Service{}, publishSvc).
		Complete(w)
}

func (w *StatusWriter) allIngresses(ctx context.Context, _ client.Object) []crreconcile.Request {
	return requestsFor(ctx, w.Client, &networkingv1.IngressList{})
}

// Reconcile brings one Ingress's load-balancer status to what it should be.
func (w *StatusWriter) Reconcile(ctx context.Context, req crreconcile.Request) (crreconcile.Result, error) {
	if w.Leader != nil && !w.Leader.IsLeader() {
		return crreconcile.Result{}, nil
	}
	var ing networkingv1.Ingress
	if err := w.Client.Get(ctx, req.NamespacedName, &ing); err != nil {
		return crreconcile.Result{}, client.IgnoreNotFound(err)
	}
	var classes networkingv1.IngressClassList
	if err := w.Client.List(ctx, &classes); err != nil {
		return crreconcile.Result{}, err
	}
	published, err := w.addresses(ctx)
	if err != nil {
		return crreconcile.Result{}, err
	}
	current := ing.Status.LoadBalancer.Ingress
	want := published
	if !IsOurs(&ing, classes.Items, w.Options) {
		if len(current) == 0 || !sameAddresses(current, published) {
			return crreconcile.Result{}, nil // not ours, and not written by us
		}
		want = nil
	}
	if sameAddresses(current, want) {
		return crreconcile.Result{}, nil
	}
	patch := client.MergeFrom(ing.DeepCopy())
	ing.Status.LoadBalancer.Ingress = want
	if err := w.Client.Status().Patch(ctx, &ing, patch); err != nil && !apierrors.IsNotFound(err) {
		return crreconcile.Result{}, fmt.Errorf("writing status of ingress %s: %w", req.NamespacedName, err)
	}
	return crreconcile.Result{}, nil
}

// addresses returns the entries to publish, sorted.
func (w *StatusWriter) addresses(ctx context.Context) ([]networkingv1.IngressLoadBalancerIngress, error) {
	if w.PublishService.Name == "" {
		return sortedAddresses(w.PublishAddresses), nil
	}
	var svc corev1.Service
	if err := w.Client.Get(ctx, w.PublishService, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []networkingv1.IngressLoadBalancerIngress
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		out = append(out, networkingv1.IngressLoadBalancerIngress{IP: lb.IP, Hostname: lb.Hostname})
	}
	if len(out) == 0 {
		for _, ip := range svc.Spec.ClusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
			}
		}
	}
	return sortedAddresses(out), nil
}

func sortedAddresses(in []networkingv1.IngressLoadBalancerIngress) []networkingv1.IngressLoadBalancerIngress {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b networkingv1.IngressLoadBalancerIngress) int {
		return strings.Compare(a.IP+"|"+a.Hostname, b.IP+"|"+b.Hostname)
	})
	return out
}

// sameAddresses compares the IP and hostname of each entry, in any order.
func sameAddresses(a, b []networkingv1.IngressLoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	sa, sb := sortedAddresses(a), sortedAddresses(b)
	for i := range sa {
		if sa[i].IP != sb[i].IP || sa[i].Hostname != sb[i].Hostname {
			return false
		}
	}
	return true
}
