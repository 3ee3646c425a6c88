package reconcile

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestTLSSecretRefsNamesOnlyReferencedSecretsOfOurIngresses(t *testing.T) {
	snap := loadCase(t, "tls")
	opts := testOptions
	opts.DefaultTLSSecret = types.NamespacedName{Namespace: "ingress", Name: "fallback"}
	got := TLSSecretRefs(snap, opts)
	want := []types.NamespacedName{{Namespace: "default", Name: "good"}, {Namespace: "default", Name: "absent"},
		{Namespace: "default", Name: "broken"}, {Namespace: "ingress", Name: "fallback"}}
	if len(got) != len(want) {
		t.Fatalf("refs = %v, want %v", got, want)
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("missing ref %v", w)
		}
	}
}

func TestDefaultTLSSecretSetsTheTableDefault(t *testing.T) {
	snap := loadCase(t, "tls")
	good := snap.Secrets[0]
	good.Namespace, good.Name = "ingress", "fallback"
	snap.Secrets = append(snap.Secrets, good)
	opts := testOptions
	opts.DefaultTLSSecret = types.NamespacedName{Namespace: "ingress", Name: "fallback"}
	table, _ := Build(snap, opts, route.NewRegistry(nil).Begin(), 1)
	if table.DefaultCertificate() == nil || table.Certificate("unknown.example") == nil {
		t.Fatal("default certificate not set from --default-tls-secret")
	}
	opts.DefaultTLSSecret.Name = "nope"
	_, problems := Build(snap, opts, route.NewRegistry(nil).Begin(), 1)
	if len(problems) == 0 || problems[0].Kind != "Secret" || problems[0].Reason != ReasonInvalidTLSSecret {
		t.Fatalf("missing default secret not reported first: %+v", problems)
	}
}

func TestCertCacheParsesEachSecretVersionOnce(t *testing.T) {
	snap := loadCase(t, "tls")
	s := snap.Secrets[0]
	s.UID, s.ResourceVersion = "u1", "1"
	var c CertCache
	c.begin()
	a, err := c.parse(&s)
	if err != nil {
		t.Fatal(err)
	}
	c.begin()
	if b, _ := c.parse(&s); b != a {
		t.Error("same UID and resourceVersion parsed again")
	}
	s.ResourceVersion = "2"
	c.begin()
	if b, _ := c.parse(&s); b == a {
		t.Error("a new resourceVersion reused the old certificate")
	}
	if len(c.prev) != 1 || len(c.used) != 1 {
		t.Errorf("entries not dropped: prev %d used %d", len(c.prev), len(c.used))
	}
}

func TestParseTLSSecretRejectsWrongTypeAndMissingKeys(t *testing.T) {
	for _, s := range []corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Type: corev1.SecretTypeDockerConfigJson},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("x")}},
	} {
		if _, err := parseTLSSecret(&s); err == nil {
			t.Errorf("secret %s accepted", s.Name)
		}
	}
}
