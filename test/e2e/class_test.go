package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

// warningEvent returns nil once a Warning Event with reason is recorded for
// Ingress ns/name.
func warningEvent(ns, name, reason string) func() error {
	return eventOf(ns, name, corev1.EventTypeWarning, reason)
}

// eventOf returns nil once an Event of type typ with reason is recorded
// for Ingress ns/name.
func eventOf(ns, name, typ, reason string) func() error {
	return func() error {
		var evs corev1.EventList
		if err := env.cp.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Ingress" && e.InvolvedObject.Name == name && e.Reason == reason && e.Type == typ {
				return nil
			}
		}
		return fmt.Errorf("no %s event %s on ingress %s/%s among %d events", typ, reason, ns, name, len(evs.Items))
	}
}

func TestClassSelectionServesOnlyOurIngresses(t *testing.T) {
	ctx := context.Background()
	newBackends(t, "classes", 1, "cls")
	route := func(host string) networkingv1.IngressRule {
		return harness.Rule(host, harness.Path(prefix, "/", "cls"))
	}
	legacyOurs := harness.Ingress("classes", "legacy-ours", "", route("legacy-ours.test"))
	legacyOurs.Annotations = map[string]string{"kubernetes.io/ingress.class": className}
	legacyOther := harness.Ingress("classes", "legacy-other", "", route("legacy-other.test"))
	legacyOther.Annotations = map[string]string{"kubernetes.io/ingress.class": "nginx"}
	objs := []client.Object{
		harness.IngressClass("other", "example.com/other", false),
		harness.Ingress("classes", "ours", className, route("ours.test")),
		harness.Ingress("classes", "other-class", "other", route("other-class.test")),
		harness.Ingress("classes", "unknown-class", "no-such-class", route("unknown-class.test")),
		harness.Ingress("classes", "no-class", "", route("no-class.test")),
		legacyOurs, legacyOther,
	}
	if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("ours.test", "/", "cls", ""))
	eventually(t, 10*time.Second, routesTo("legacy-ours.test", "/", "cls", ""))
	checkRoutes(t, []routeCase{
		{"other-class.test", "/", "", http.StatusNotFound},
		{"unknown-class.test", "/", "", http.StatusNotFound},
		{"legacy-other.test", "/", "", http.StatusNotFound},
		{"no-class.test", "/", "", http.StatusNotFound},
	})

	t.Run("DefaultClassAdoptsIngressesWithoutClass", func(t *testing.T) {
		setDefaultClass(t, true)
		t.Cleanup(func() { setDefaultClass(t, false) })
		eventually(t, 10*time.Second, routesTo("no-class.test", "/", "cls", ""))
		checkRoutes(t, []routeCase{
			{"other-class.test", "/", "", http.StatusNotFound},
			{"legacy-other.test", "/", "", http.StatusNotFound},
		})
	})
	eventually(t, 10*time.Second, answers("no-class.test", "/", http.StatusNotFound))
}

// setDefaultClass sets or clears the is-default-class annotation on our
// IngressClass.
func setDefaultClass(t *testing.T, on bool) {
	t.Helper()
	ctx := context.Background()
	var ic networkingv1.IngressClass
	if err := env.cp.Client.Get(ctx, client.ObjectKey{Name: className}, &ic); err != nil {
		t.Fatal(err)
	}
	if on {
		ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	} else {
		delete(ic.Annotations, networkingv1.AnnotationIsDefaultIngressClass)
	}
	if err := env.cp.Client.Update(ctx, &ic); err != nil {
		t.Fatal(err)
	}
}
