package chart

import (
	"fmt"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// grant is one (API group, resource, verb) the chart may give the
// controller.
type grant struct{ group, resource, verb string }

// use is why a grant exists and where it may be given.
type use struct {
	why string
	// scope is where the grant may appear: "cluster" (a ClusterRole, or a
	// Role in the watched namespace), or "own-namespace" (only a Role in the
	// release or Lease namespace, never a ClusterRole).
	scope string
}

// allowedGrants is every permission the controller's code uses, with the
// code path that uses it. A rendered rule outside this list fails
// TestRBACRulesAreAllowListed: add a grant here only together with the code
// that needs it.
var allowedGrants = map[grant]use{
	{"networking.k8s.io", "ingresses", "list"}:         {"pkg/reconcile Controller.snapshot and StatusWriter: cache informer", "cluster"},
	{"networking.k8s.io", "ingresses", "watch"}:        {"pkg/reconcile Controller.snapshot and StatusWriter: cache informer", "cluster"},
	{"networking.k8s.io", "ingresses/status", "patch"}: {"pkg/reconcile StatusWriter.Reconcile: Status().Patch of status.loadBalancer", "cluster"},
	{"networking.k8s.io", "ingressclasses", "list"}:    {"pkg/reconcile Controller.snapshot, StatusWriter.Reconcile: cache informer", "cluster"},
	{"networking.k8s.io", "ingressclasses", "watch"}:   {"pkg/reconcile Controller.snapshot, StatusWriter.Reconcile: cache informer", "cluster"},
	{"", "services", "list"}:                           {"pkg/reconcile Controller (backends), StatusWriter.addresses (--publish-service): cache informer", "cluster"},
	{"", "services", "watch"}:                          {"pkg/reconcile Controller (backends), StatusWriter.addresses (--publish-service): cache informer", "cluster"},
	{"discovery.k8s.io", "endpointslices", "list"}:     {"pkg/reconcile Controller.snapshot: cache informer", "cluster"},
	{"discovery.k8s.io", "endpointslices", "watch"}:    {"pkg/reconcile Controller.snapshot: cache informer", "cluster"},
	{"", "secrets", "list"}:                            {"pkg/reconcile SecretWatcher.start: one metadata.name list per referenced TLS Secret", "cluster"},
	{"", "secrets", "watch"}:                           {"pkg/reconcile SecretWatcher.start: one metadata.name watch per referenced TLS Secret", "cluster"},
	{"events.k8s.io", "events", "create"}:              {"pkg/reconcile Controller.emit: events.k8s.io/v1 recorder (new Event)", "cluster"},
	{"events.k8s.io", "events", "patch"}:               {"pkg/reconcile Controller.emit: events.k8s.io/v1 recorder (Event series)", "cluster"},
	{"kakehi.dev", "routepolicies", "list"}:            {"RoutePolicy reconciler (pkg/reconcile, issue 6): cache informer", "cluster"},
	{"kakehi.dev", "routepolicies", "watch"}:           {"RoutePolicy reconciler (pkg/reconcile, issue 6): cache informer", "cluster"},
	{"kakehi.dev", "routepolicies/status", "patch"}:    {"RoutePolicy status writer (leader only, issue 6): Status().Patch", "cluster"},
	{"coordination.k8s.io", "leases", "create"}:        {"pkg/reconcile Leader: client-go LeaseLock.Create (first election)", "own-namespace"},
	{"coordination.k8s.io", "leases", "get"}:           {"pkg/reconcile Leader: client-go LeaseLock.Get", "own-namespace"},
	{"coordination.k8s.io", "leases", "update"}:        {"pkg/reconcile Leader: client-go LeaseLock.Update (renew, release)", "own-namespace"},
}

// TestAllowListNamesACodePath keeps allowedGrants honest: every allowed
// grant says which code uses it.
func TestAllowListNamesACodePath(t *testing.T) {
	for g, u := range allowedGrants {
		if u.why == "" || (u.scope != "cluster" && u.scope != "own-namespace") {
			t.Errorf("grant %v: names no code path or has scope %q", g, u.scope)
		}
	}
}

// TestRBACRulesAreAllowListed renders the chart for every valuesCase and
// fails on a wildcard, a non-resource URL, or any rule outside
// allowedGrants or outside the grant's scope.
func TestRBACRulesAreAllowListed(t *testing.T) {
	for _, vc := range valuesMatrix {
		t.Run(vc.name, func(t *testing.T) {
			r := mustRender(t, "kakehi", vc.values)
			for _, u := range r.Objects {
				var rules []rbacv1.PolicyRule
				switch u.GetKind() {
				case "ClusterRole":
					rules = into[rbacv1.ClusterRole](t, u).Rules
				case "Role":
					rules = into[rbacv1.Role](t, u).Rules
				default:
					continue
				}
				for _, err := range ruleViolations(u.GetKind(), rules) {
					t.Errorf("%s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
				}
			}
			checkBindings(t, r)
		})
	}
}

// ruleViolations judges the rules of one Role or ClusterRole.
func ruleViolations(kind string, rules []rbacv1.PolicyRule) []error {
	var errs []error
	for _, rule := range rules {
		if len(rule.NonResourceURLs) > 0 {
			errs = append(errs, fmt.Errorf("non-resource URLs %v", rule.NonResourceURLs))
		}
		for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
			if slices.ContainsFunc(list, func(s string) bool { return s == "*" || s == rbacv1.VerbAll }) {
				errs = append(errs, fmt.Errorf("wildcard in %v", rule))
			}
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					u, ok := allowedGrants[grant{g, res, v}]
					switch {
					case !ok:
						errs = append(errs, fmt.Errorf("grants %s %q %s, which no code path uses", v, g, res))
					case u.scope == "own-namespace" && kind != "Role":
						errs = append(errs, fmt.Errorf("grants %s %s in a %s: only a Role in the controller's own namespace may", v, res, kind))
					}
				}
			}
		}
	}
	return errs
}

// checkBindings fails unless every binding binds only the chart's
// ServiceAccount to a role the chart rendered.
func checkBindings(t *testing.T, r *Rendered) {
	t.Helper()
	roles := map[string]bool{}
	sa := ""
	for _, u := range r.Objects {
		switch u.GetKind() {
		case "ClusterRole":
			roles["ClusterRole//"+u.GetName()] = true
		case "Role":
			roles["Role/"+u.GetNamespace()+"/"+u.GetName()] = true
		case "ServiceAccount":
			sa = u.GetNamespace() + "/" + u.GetName()
		}
	}
	for _, u := range r.Objects {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		switch u.GetKind() {
		case "ClusterRoleBinding":
			b := into[rbacv1.ClusterRoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		case "RoleBinding":
			b := into[rbacv1.RoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		default:
			continue
		}
		key := ref.Kind + "/" + u.GetNamespace() + "/" + ref.Name
		if ref.Kind == "ClusterRole" {
			key = "ClusterRole//" + ref.Name
		}
		if !roles[key] {
			t.Errorf("%s %s binds %s, which the chart does not render", u.GetKind(), u.GetName(), key)
		}
		for _, s := range subjects {
			if s.Kind != "ServiceAccount" || s.Namespace+"/"+s.Name != sa {
				t.Errorf("%s %s binds %s %s/%s, want only the ServiceAccount %s", u.GetKind(), u.GetName(), s.Kind, s.Namespace, s.Name, sa)
			}
		}
	}
}

// TestRBACCheckRefusesBadRules pins that ruleViolations can fail.
func TestRBACCheckRefusesBadRules(t *testing.T) {
	cases := []struct {
		name string
		kind string
		rule rbacv1.PolicyRule
	}{
		{"wildcard verb", "ClusterRole", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"*"}}},
		{"wildcard resource", "ClusterRole", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"list"}}},
		{"unused verb", "ClusterRole", rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"delete"}}},
		{"secret get", "ClusterRole", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
		{"leases cluster-wide", "ClusterRole", rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get"}}},
		{"non-resource", "ClusterRole", rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	for _, c := range cases {
		if errs := ruleViolations(c.kind, []rbacv1.PolicyRule{c.rule}); len(errs) == 0 {
			t.Errorf("%s: accepted", c.name)
		}
	}
}
