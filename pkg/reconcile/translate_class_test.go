package reconcile

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIsOurs(t *testing.T) {
	ours := "kakehi.dev/ingress-controller"
	class := func(name, controller string, isDefault string) networkingv1.IngressClass {
		c := networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}
		if isDefault != "" {
			c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: isDefault}
		}
		return c
	}
	ing := func(className *string, legacy string) *networkingv1.Ingress {
		i := &networkingv1.Ingress{Spec: networkingv1.IngressSpec{IngressClassName: className}}
		if legacy != "" {
			i.Annotations = map[string]string{"kubernetes.io/ingress.class": legacy}
		}
		return i
	}
	name := func(s string) *string { return &s }
	plain := []networkingv1.IngressClass{class("kakehi", ours, ""), class("nginx", "k8s.io/ingress-nginx", "true")}
	withDefault := []networkingv1.IngressClass{class("kakehi", ours, "true"), class("nginx", "k8s.io/ingress-nginx", "")}
	falseDefault := []networkingv1.IngressClass{class("kakehi", ours, "false")}
	tests := []struct {
		desc    string
		ing     *networkingv1.Ingress
		classes []networkingv1.IngressClass
		opts    Options
		want    bool
	}{
		{"class name of ours", ing(name("kakehi"), ""), plain, testOptions, true},
		{"class name of another controller", ing(name("nginx"), ""), plain, testOptions, false},
		{"unknown class name", ing(name("missing"), ""), plain, testOptions, false},
		{"unknown class name equal to our IngressClass option", ing(name("kakehi"), ""), nil, testOptions, false},
		{"class name wins over legacy annotation", ing(name("nginx"), "kakehi"), plain, testOptions, false},
		{"class name ours, legacy other", ing(name("kakehi"), "nginx"), plain, testOptions, true},
		{"legacy annotation ours", ing(nil, "kakehi"), nil, testOptions, true},
		{"legacy annotation other", ing(nil, "nginx"), withDefault, testOptions, false},
		{"no class, other controller is default", ing(nil, ""), plain, testOptions, false},
		{"no class, ours is default", ing(nil, ""), withDefault, testOptions, true},
		{"no class, ours says default false", ing(nil, ""), falseDefault, testOptions, false},
		{"empty class name counts as unset", ing(name(""), ""), withDefault, testOptions, true},
		{"no classes at all", ing(nil, ""), nil, testOptions, false},
		{"empty controller name owns nothing", ing(name("blank"), ""),
			[]networkingv1.IngressClass{class("blank", "", "true")}, Options{IngressClass: "kakehi"}, false},
		{"empty IngressClass option matches no annotation", ing(nil, "x"), nil, Options{ControllerName: ours}, false},
	}
	for _, tc := range tests {
		if got := IsOurs(tc.ing, tc.classes, tc.opts); got != tc.want {
			t.Errorf("%s: IsOurs = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

// TestOursSortsByPrecedence: oldest first, then namespace, then name.
func TestOursSortsByPrecedence(t *testing.T) {
	snap := &Snapshot{
		IngressClasses: []networkingv1.IngressClass{testClass()},
		Ingresses: []networkingv1.Ingress{
			testIngress("b", "x", 100, "", "s", "/"),
			testIngress("a", "y", 100, "", "s", "/"),
			testIngress("a", "x", 100, "", "s", "/"),
			testIngress("z", "z", 50, "", "s", "/"),
			testIngress("a", "new", 300, "", "s", "/"),
		},
	}
	other := "nginx"
	snap.Ingresses[4].Spec.IngressClassName = &other
	var got []string
	for _, ing := range Ours(snap, testOptions) {
		got = append(got, ing.Namespace+"/"+ing.Name)
	}
	want := []string{"z/z", "a/x", "a/y", "b/x"}
	if len(got) != len(want) {
		t.Fatalf("Ours = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Ours = %v, want %v", got, want)
		}
	}
}
