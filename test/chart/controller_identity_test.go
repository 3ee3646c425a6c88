package chart

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/test/harness"
)

// TestControllerRunsUnderTheChartsServiceAccount installs the chart's RBAC
// for real and runs the controller binary as the chart's ServiceAccount,
// with leader election, status publishing and RoutePolicies on: it must
// serve traffic, write Ingress status and RoutePolicy conditions, and log
// no Forbidden error. A permission the code needs but the chart lacks
// fails here.
func TestControllerRunsUnderTheChartsServiceAccount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := renderChart(t, "kakehi", "")
	if err != nil {
		t.Fatal(err)
	}
	ensureNamespaces(t)
	saNS, saName := installRBAC(t, r)
	id, err := env.cp.AsServiceAccount(saNS, saName)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := harness.StartPod("idsvc", "idsvc-0", harness.PodIP(70, 0), 8080)
	if err != nil {
		t.Fatal(err)
	}
	defer pod.Stop()
	ing := harness.Ingress("identity", "id", "kakehi", harness.Rule("identity.test", harness.Path(networkingv1.PathTypePrefix, "/", "idsvc")))
	limit := int64(1024)
	policy := &v1alpha1.RoutePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "identity", Name: "id"},
		Spec: v1alpha1.RoutePolicySpec{MaxRequestBodyBytes: &limit,
			TargetRefs: []v1alpha1.LocalPolicyTargetReference{{Group: "networking.k8s.io", Kind: "Ingress", Name: "id"}}},
	}
	objs := []client.Object{harness.Namespace("identity"), harness.IngressClass("kakehi", "kakehi.dev/ingress-controller", false),
		harness.Service("identity", "idsvc"), harness.EndpointSlice("identity", "idsvc-1", "idsvc", pod), ing, policy}
	if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartController(ctx, harness.ControllerOptions{Kubeconfig: id.Kubeconfig,
		Args: []string{"--leader-elect", "--leader-election-namespace", saNS, "--publish-address", "192.0.2.50"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	harness.Eventually(t, 20*time.Second, func() error {
		resp, err := httpGet(c.HTTPAddr, "identity.test")
		if err != nil || resp != "idsvc-0" {
			return fmt.Errorf("not served under the ServiceAccount: %q %v", resp, err)
		}
		return nil
	})
	harness.Eventually(t, 20*time.Second, func() error {
		var got networkingv1.Ingress
		if err := env.cp.Client.Get(ctx, client.ObjectKeyFromObject(ing), &got); err != nil {
			return err
		}
		if len(got.Status.LoadBalancer.Ingress) != 1 || got.Status.LoadBalancer.Ingress[0].IP != "192.0.2.50" {
			return fmt.Errorf("status %+v", got.Status.LoadBalancer)
		}
		return nil
	})
	harness.Eventually(t, 20*time.Second, func() error {
		var got v1alpha1.RoutePolicy
		if err := env.cp.Client.Get(ctx, client.ObjectKeyFromObject(policy), &got); err != nil {
			return err
		}
		if !apimeta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionAccepted) {
			return fmt.Errorf("policy conditions %+v", got.Status.Conditions)
		}
		return nil
	})
	if log := strings.ToLower(c.Log()); strings.Contains(log, "forbidden") {
		t.Errorf("the controller hit a permission the chart does not grant:\n%s", c.Log())
	}
}

// httpGet returns the X-Pod header of GET / with the given Host.
func httpGet(addr, host string) (string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Pod"), nil
}
