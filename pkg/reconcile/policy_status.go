package reconcile

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
)

// PolicyStatusWriter writes the Accepted and ResolvedRefs conditions of
// every RoutePolicy, with observedGeneration, from ResolvePolicies. It
// writes only when this replica leads, and only when a condition changed.
type PolicyStatusWriter struct {
	Client  client.Client
	Options Options
	Leader  *Leader // nil: always write
}

// SetupWithManager registers the writer: each RoutePolicy is reconciled
// when it or any Ingress or IngressClass changes (a change can move a
// conflict), and all of them when this replica becomes leader.
func (w *PolicyStatusWriter) SetupWithManager(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(w.allPolicies)
	return statusController(mgr, "kakehi-policy-status", w.Leader, all).
		Watches(&v1alpha1.RoutePolicy{}, all). // a change can move another policy's conflict
		Watches(&networkingv1.Ingress{}, all).
		Watches(&networkingv1.IngressClass{}, all).
		Complete(w)
}

func (w *PolicyStatusWriter) allPolicies(ctx context.Context, _ client.Object) []crreconcile.Request {
	return requestsFor(ctx, w.Client, &v1alpha1.RoutePolicyList{})
}

// Reconcile resolves every policy and writes this one's conditions.
func (w *PolicyStatusWriter) Reconcile(ctx context.Context, req crreconcile.Request) (crreconcile.Result, error) {
	if w.Leader != nil && !w.Leader.IsLeader() {
		return crreconcile.Result{}, nil
	}
	var policy v1alpha1.RoutePolicy
	if err := w.Client.Get(ctx, req.NamespacedName, &policy); err != nil {
		return crreconcile.Result{}, client.IgnoreNotFound(err)
	}
	snap, err := w.snapshot(ctx, req.Namespace)
	if err != nil {
		return crreconcile.Result{}, err
	}
	_, results := ResolvePolicies(snap, w.Options)
	for _, r := range results {
		if r.Namespace != policy.Namespace || r.Name != policy.Name {
			continue
		}
		patch := client.MergeFrom(policy.DeepCopy())
		changed := setCondition(&policy.Status.Conditions, r.Accepted)
		changed = setCondition(&policy.Status.Conditions, r.ResolvedRefs) || changed
		if !changed && policy.Status.ObservedGeneration == policy.Generation {
			return crreconcile.Result{}, nil
		}
		policy.Status.ObservedGeneration = policy.Generation
		if err := w.Client.Status().Patch(ctx, &policy, patch); err != nil {
			return crreconcile.Result{}, fmt.Errorf("writing status of RoutePolicy %s: %w", req.NamespacedName, err)
		}
	}
	return crreconcile.Result{}, nil
}

// snapshot reads what resolution needs: IngressClasses, and the Ingresses
// and RoutePolicies of the policy's namespace (policies attach only there).
func (w *PolicyStatusWriter) snapshot(ctx context.Context, ns string) (*Snapshot, error) {
	var classes networkingv1.IngressClassList
	var ings networkingv1.IngressList
	var pols v1alpha1.RoutePolicyList
	if err := w.Client.List(ctx, &classes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	if err := w.Client.List(ctx, &ings, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	if err := w.Client.List(ctx, &pols, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return &Snapshot{IngressClasses: classes.Items, Ingresses: ings.Items, RoutePolicies: pols.Items}, nil
}

// setCondition sets c in conds, keeping the transition time when the
// status did not change, and reports whether anything changed.
func setCondition(conds *[]metav1.Condition, c metav1.Condition) bool {
	old := apimeta.FindStatusCondition(*conds, c.Type)
	if old != nil && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message &&
		old.ObservedGeneration == c.ObservedGeneration {
		return false
	}
	apimeta.SetStatusCondition(conds, c)
	return true
}
