package chart

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestChartValuesMatrix renders the chart for every valuesCase, sends every
// object to the API server with server-side dry-run and strict field
// validation (an unknown or misplaced field, a bad value, a deprecated API
// or a Pod Security "restricted" warning fails), evaluates every pod
// template against Pod Security "restricted", and runs the case's checks.
func TestChartValuesMatrix(t *testing.T) {
	ensureNamespaces(t)
	for _, vc := range valuesMatrix {
		t.Run(vc.name, func(t *testing.T) {
			r := mustRender(t, "kakehi", vc.values)
			dryRunAll(t, r)
			for _, pt := range podTemplates(t, r) {
				if errs := restrictedViolations(pt.tmpl); len(errs) > 0 {
					t.Errorf("%s violates Pod Security restricted: %s", pt.owner, strings.Join(errs, "; "))
				}
			}
			if r.Notes == "" {
				t.Error("NOTES.txt rendered empty")
			}
			vc.check(t, r)
		})
	}
}

// dryRunAll creates every object of r with dryRun=All and
// fieldValidation=Strict, and fails on any error or warning.
func dryRunAll(t *testing.T, r *Rendered) {
	t.Helper()
	c, warn := warningClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range r.Objects {
		scoped, err := c.IsObjectNamespaced(o)
		if err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		if scoped && o.GetNamespace() == "" {
			t.Errorf("%s %s has no metadata.namespace: `helm template | kubectl apply` would put it in the wrong namespace", o.GetKind(), o.GetName())
		}
		if err := c.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("dry-run create %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		for _, w := range warn.take() {
			t.Errorf("dry-run create %s %s/%s: API server warning: %s", o.GetKind(), o.GetNamespace(), o.GetName(), w)
		}
	}
}

// podTemplate is a pod template found in a rendered workload.
type podTemplate struct {
	owner string
	tmpl  *corev1.PodTemplateSpec
}

// podTemplates returns the pod template of every workload in r. It fails
// on a workload kind it does not know, so a new kind cannot skip the Pod
// Security check.
func podTemplates(t *testing.T, r *Rendered) []podTemplate {
	t.Helper()
	var out []podTemplate
	for _, o := range r.Objects {
		switch o.GetKind() {
		case "Deployment":
			d := into[appsv1.Deployment](t, o)
			out = append(out, podTemplate{owner: "Deployment " + d.Name, tmpl: &d.Spec.Template})
		case "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod", "ReplicaSet":
			t.Fatalf("%s %s: add this kind to podTemplates", o.GetKind(), o.GetName())
		}
	}
	if len(out) == 0 {
		t.Fatal("no workload rendered")
	}
	return out
}

// restrictedViolations evaluates a pod template against the latest Pod
// Security "restricted" level and returns the failed checks.
func restrictedViolations(tmpl *corev1.PodTemplateSpec) []string {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return []string{err.Error()}
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	var out []string
	for _, res := range eval.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec) {
		if !res.Allowed {
			out = append(out, res.ForbiddenReason+": "+res.ForbiddenDetail)
		}
	}
	return out
}

// TestPodSecurityCheckCatchesAnUnsafeTemplate pins that the restricted
// check can fail: a template that allows privilege escalation, runs as
// root or keeps capabilities is refused by the evaluator and warned about by
// the API server.
func TestPodSecurityCheckCatchesAnUnsafeTemplate(t *testing.T) {
	ensureNamespaces(t)
	cases := []struct{ name, values, want string }{
		{"privilege escalation", `containerSecurityContext: {allowPrivilegeEscalation: true, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}`, "allowPrivilegeEscalation"},
		{"root user", `podSecurityContext: {runAsNonRoot: false, runAsUser: 0, seccompProfile: {type: RuntimeDefault}}
containerSecurityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}`, "runAsNonRoot"},
		{"capabilities kept", `containerSecurityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {add: [NET_ADMIN]}, seccompProfile: {type: RuntimeDefault}}`, "capabilities"},
		// Helm merges maps with the defaults: null removes a key.
		{"no seccomp", `podSecurityContext: {seccompProfile: null}
containerSecurityContext: {seccompProfile: null}`, "seccompProfile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustRender(t, "kakehi", c.values)
			pt := podTemplates(t, r)[0]
			errs := restrictedViolations(pt.tmpl)
			if !strings.Contains(strings.Join(errs, "\n"), c.want) {
				t.Errorf("evaluator: want a violation naming %q, got %q", c.want, errs)
			}
			cl, warn := warningClient(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d := r.One(t, "Deployment").DeepCopy()
			if err := cl.Create(ctx, d, client.DryRunAll); err != nil {
				t.Fatal(err)
			}
			if w := strings.Join(warn.take(), "\n"); !strings.Contains(w, "restricted") {
				t.Errorf("API server gave no Pod Security warning; warnings: %q", w)
			}
		})
	}
}

// TestChartRefusesBadValues pins that values.schema.json and the templates'
// own checks stop bad values before anything reaches a cluster.
func TestChartRefusesBadValues(t *testing.T) {
	cases := []struct{ name, values, want string }{
		{"unknown key", `replicas: 3`, "replicas"},
		{"misspelt nested key", `service: {externalTraficPolicy: Local}`, "externalTraficPolicy"},
		{"bad traffic policy", `service: {externalTrafficPolicy: Sometimes}`, "externalTrafficPolicy"},
		{"privileged port", `ports: {http: 80}`, "http"},
		{"grace shorter than drain", `terminationGracePeriodSeconds: 10`, "shorter than"},
		{"two pdb bounds", `podDisruptionBudget: {minAvailable: 1}`, "podDisruptionBudget"},
		{"arg not a flag", `controller: {extraArgs: ["-v"]}`, "extraArgs"},
		{"digest not sha256", `image: {digest: latest}`, "digest"},
		{"bad watch namespace", `controller: {watchNamespace: "Apps"}`, "watchNamespace"},
		{"bad default tls", `controller: {defaultTLSSecret: "wildcard"}`, "defaultTLSSecret"},
		{"hpa min above max", `autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 2, targetCPUUtilizationPercentage: 70}`, "minReplicas"},
		{"controller name without domain", `ingressClass: {controllerName: kakehi}`, "controllerName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderChart(t, "kakehi", c.values)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error naming %q, got %v", c.want, err)
			}
		})
	}
}

// TestRenderedObjectsAreLabelled pins the common labels on every object, so
// `kubectl get all -l app.kubernetes.io/instance=<release>` finds them.
func TestRenderedObjectsAreLabelled(t *testing.T) {
	r := mustRender(t, "edge", `metrics: {serviceMonitor: {enabled: true}}
autoscaling: {enabled: true}`)
	for _, o := range r.Objects {
		l := o.GetLabels()
		if l["app.kubernetes.io/instance"] != "edge" || l["app.kubernetes.io/name"] != "kakehi" || l["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("%s %s labels = %v", o.GetKind(), o.GetName(), l)
		}
		if !strings.HasPrefix(o.GetName(), "edge-kakehi") && o.GetKind() != "IngressClass" {
			t.Errorf("%s %s: name not prefixed by the release's full name", o.GetKind(), o.GetName())
		}
	}
}
