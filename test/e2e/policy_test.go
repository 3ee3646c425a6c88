package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/test/harness"
)

func routePolicy(ns, name string, spec v1alpha1.RoutePolicySpec, targets ...string) *v1alpha1.RoutePolicy {
	for _, t := range targets {
		spec.TargetRefs = append(spec.TargetRefs, v1alpha1.LocalPolicyTargetReference{Group: "networking.k8s.io", Kind: "Ingress", Name: t})
	}
	return &v1alpha1.RoutePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

// conditionIs returns nil once RoutePolicy ns/name has condition typ with
// the given status and reason for its current generation.
func conditionIs(ns, name, typ string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		var p v1alpha1.RoutePolicy
		if err := env.cp.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		c := apimeta.FindStatusCondition(p.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != p.Generation {
			return fmt.Errorf("RoutePolicy %s/%s %s = %+v (generation %d), want %s/%s", ns, name, typ, c, p.Generation, status, reason)
		}
		return nil
	}
}

// TestRoutePolicyConditionsTellTheLoserWhy: of two policies on one
// Ingress the older wins; the younger is told why in its conditions; a
// policy whose target is missing says so.
func TestRoutePolicyConditionsTellTheLoserWhy(t *testing.T) {
	ctx := context.Background()
	newBackends(t, "policies", 1, "pol")
	ing := harness.Ingress("policies", "pol", className, harness.Rule("pol.test", harness.Path(prefix, "/", "pol")))
	if err := harness.CreateAll(ctx, env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	limit := int64(1 << 20)
	older := routePolicy("policies", "older", v1alpha1.RoutePolicySpec{MaxRequestBodyBytes: &limit}, "pol")
	if err := harness.CreateAll(ctx, env.cp.Client, older); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, conditionIs("policies", "older", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted))
	younger := routePolicy("policies", "younger", v1alpha1.RoutePolicySpec{MaxRequestBodyBytes: &limit}, "pol")
	dangling := routePolicy("policies", "dangling", v1alpha1.RoutePolicySpec{MaxRequestBodyBytes: &limit}, "absent")
	if err := harness.CreateAll(ctx, env.cp.Client, younger, dangling); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, conditionIs("policies", "younger", v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflicted))
	eventually(t, 10*time.Second, conditionIs("policies", "dangling", v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonTargetNotFound))
	eventually(t, 10*time.Second, conditionIs("policies", "older", v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs))
	// The winner goes away: the younger policy takes the Ingress.
	if err := env.cp.Client.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, conditionIs("policies", "younger", v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted))
}
