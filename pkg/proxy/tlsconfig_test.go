package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestSelfSignedCertificateIsUsable(t *testing.T) {
	c, err := SelfSignedCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf == nil || c.Leaf.Subject.CommonName != "kakehi-default" || time.Until(c.Leaf.NotAfter) < 300*24*time.Hour {
		t.Fatalf("unexpected certificate %+v", c.Leaf)
	}
}

func TestCertificateChoiceAndMisdirection(t *testing.T) {
	fallback, _ := SelfSignedCertificate(time.Now())
	exact := certFor(t, "shop.example.com")
	wild := certFor(t, "*.example.com")
	b := route.NewBuilder(1)
	b.AddTLS("shop.example.com", route.TLSHost{Cert: exact})
	b.AddTLS("*.example.com", route.TLSHost{Cert: wild})
	store := route.NewStore()
	for _, tc := range []struct {
		name string
		want *tls.Certificate
	}{{"shop.example.com", fallback}} { // before any table: the fallback
		if got := certificateFor(store, fallback, tc.name); got != tc.want {
			t.Errorf("no table: %s got %p", tc.name, got)
		}
	}
	store.Publish(b.Build())
	for _, tc := range []struct {
		name string
		want *tls.Certificate
	}{
		{"shop.example.com", exact},
		{"api.example.com", wild},
		{"other.org", fallback},
		{"", fallback},
	} {
		if got := certificateFor(store, fallback, tc.name); got != tc.want {
			t.Errorf("%q: got %p want %p", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		negotiated *tls.Certificate
		host       string
		want       bool
	}{
		{exact, "shop.example.com", false},
		{exact, "SHOP.example.com:443", false},
		{exact, "api.example.com", true}, // a connection for shop reused for api
		{wild, "api.example.com", false},
		{wild, "b.example.com", false},
		{fallback, "other.org", false},                              // not a TLS host: any certificate serves it
		{fallback, "shop.example.com", true},                        // a TLS host reached on the default certificate
		{wild, "shop.example.com", false},                           // the wildcard covers shop too
		{certFor(t, "shop.example.com"), "shop.example.com", false}, // a rotated-away certificate that still covers it
	} {
		if got := misdirected(store, fallback, tc.negotiated, tc.host); got != tc.want {
			t.Errorf("misdirected(%s) = %v, want %v", tc.host, got, tc.want)
		}
	}
	cfg := tlsConfig(store, fallback, []string{"http/1.1"})
	if cfg.MinVersion != tls.VersionTLS12 || cfg.SessionTicketsDisabled {
		t.Error("TLS 1.2 minimum and session resumption expected")
	}
}

// certFor returns a self-signed certificate for names.
func certFor(t *testing.T, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
