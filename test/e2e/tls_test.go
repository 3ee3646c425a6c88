package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kakehi/kakehi/test/harness"
)

// testCA issues the certificates of the TLS tests; clients trust only it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kakehi e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a PEM certificate and key for names, with the given serial.
func (ca *testCA) issue(t testing.TB, serial int64, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// tlsSecret is a kubernetes.io/tls Secret for names.
func (ca *testCA) tlsSecret(t testing.TB, ns, name string, serial int64, names ...string) *corev1.Secret {
	c, k := ca.issue(t, serial, names...)
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: c, corev1.TLSPrivateKeyKey: k}}
}

// handshake connects to the TLS port with SNI name and returns the leaf
// certificate presented (not verified: the default one is self-signed).
func handshake(name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", env.ctrl.HTTPSAddr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// presents returns nil when a handshake for sni presents a certificate
// whose first name is want.
func presents(sni, want string) func() error {
	return func() error {
		leaf, err := handshake(sni)
		if err != nil {
			return err
		}
		if got := leaf.Subject.CommonName; got != want {
			return fmt.Errorf("SNI %s: certificate for %q, want %q", sni, got, want)
		}
		return nil
	}
}

// httpsClient verifies the proxy's certificates with ca and dials the TLS
// port whatever the URL's host; h2 enables HTTP/2 by ALPN.
func httpsClient(t testing.TB, ca *testCA, h2 bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, env.ctrl.HTTPSAddr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func tlsIngress(ns, name string, tlsHosts map[string][]string, hosts ...string) *networkingv1.Ingress {
	var rules []networkingv1.IngressRule
	for _, h := range hosts {
		rules = append(rules, harness.Rule(h, harness.Path(prefix, "/", "tls-web")))
	}
	ing := harness.Ingress(ns, name, className, rules...)
	for secret, hs := range tlsHosts {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: hs, SecretName: secret})
	}
	return ing
}

func TestTLSTermination(t *testing.T) {
	ctx := context.Background()
	ns := "tls-term"
	newBackends(t, ns, 1, "tls-web")
	ca := newTestCA(t)
	ing := tlsIngress(ns, "shop", map[string][]string{
		"shop": {"shop.tls.test"}, "wild": {"*.wild.tls.test"}, "nope": {"missing.tls.test"},
		"broken": {"broken.tls.test"},
	}, "shop.tls.test", "*.wild.tls.test", "missing.tls.test", "broken.tls.test")
	// A malformed Secret: the certificate of one key pair with the key of
	// another.
	broken := ca.tlsSecret(t, ns, "broken", 5, "broken.tls.test")
	broken.Data[corev1.TLSPrivateKeyKey] = ca.tlsSecret(t, ns, "other", 6, "other.tls.test").Data[corev1.TLSPrivateKeyKey]
	keep := tlsIngress(ns, "keep", map[string][]string{"keep": {"keep.tls.test"}}, "keep.tls.test")
	keep.Annotations = map[string]string{"kakehi.dev/ssl-redirect": "false"}
	if err := harness.CreateAll(ctx, env.cp.Client,
		ca.tlsSecret(t, ns, "shop", 2, "shop.tls.test"), ca.tlsSecret(t, ns, "wild", 3, "*.wild.tls.test"),
		ca.tlsSecret(t, ns, "keep", 4, "keep.tls.test"), broken, ing, keep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, presents("shop.tls.test", "shop.tls.test"))
	eventually(t, 10*time.Second, presents("keep.tls.test", "keep.tls.test"))
	eventually(t, 10*time.Second, eventOf(ns, "shop", "Warning", "TLSSecretNotFound"))
	eventually(t, 10*time.Second, eventOf(ns, "shop", "Warning", "InvalidTLSSecret"))
	for _, c := range [][2]string{
		{"broken.tls.test", "kakehi-default"},
		{"a.wild.tls.test", "*.wild.tls.test"},
		{"missing.tls.test", "kakehi-default"},
		{"unknown.example", "kakehi-default"},
		{"shop.tls.test", "shop.tls.test"},
	} {
		if err := presents(c[0], c[1])(); err != nil {
			t.Error(err)
		}
	}

	// HTTP/1.1 and HTTP/2 over TLS, verified against the test CA.
	_, port, _ := net.SplitHostPort(env.ctrl.HTTPSAddr)
	for _, h2 := range []bool{false, true} {
		req, _ := http.NewRequest("GET", "https://shop.tls.test/over-tls", nil)
		r, err := roundTripProto(httpsClient(t, ca, h2), req, map[bool]int{false: 1, true: 2}[h2])
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		if r.Echo == nil || r.Echo.Service != "tls-web" {
			t.Fatalf("h2=%v: %s", h2, errStatus(r))
		}
		if got := r.Echo.Headers["X-Forwarded-Proto"]; !slices.Equal(got, []string{"https"}) {
			t.Errorf("h2=%v: X-Forwarded-Proto %q", h2, got)
		}
		if got := r.Echo.Headers["X-Forwarded-Port"]; !slices.Equal(got, []string{port}) {
			t.Errorf("h2=%v: X-Forwarded-Port %q, want %s", h2, got, port)
		}
	}

	// 421: a connection made for shop.tls.test asked for a.wild.tls.test.
	hc := httpsClient(t, ca, false)
	req, _ := http.NewRequest("GET", "https://shop.tls.test/", nil)
	req.Host = "a.wild.tls.test"
	if r, err := roundTrip(hc, req); err != nil || r.Status != http.StatusMisdirectedRequest || r.Echo != nil {
		t.Errorf("misdirected request: %v %+v", err, r)
	}

	// Plain HTTP: 308 for TLS hosts, except ACME challenges and an Ingress
	// with kakehi.dev/ssl-redirect: "false".
	r, err := get("shop.tls.test", "/a?b=c")
	if err != nil || r.Status != http.StatusPermanentRedirect || r.Header.Get("Location") != "https://shop.tls.test:"+port+"/a?b=c" {
		t.Errorf("redirect: %v %+v", err, r)
	}
	if r, err := get("x.wild.tls.test", "/"); err != nil || r.Status != http.StatusPermanentRedirect {
		t.Errorf("wildcard redirect: %v %+v", err, r)
	}
	for _, c := range [][2]string{{"shop.tls.test", "/.well-known/acme-challenge/tok"}, {"keep.tls.test", "/"}} {
		if err := routesTo(c[0], c[1], "tls-web", "")(); err != nil {
			t.Errorf("not redirected: %v", err)
		}
	}
	noFollow := *h2c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ = http.NewRequest("GET", "http://"+env.ctrl.HTTPAddr+"/h2c", nil)
	req.Host = "shop.tls.test"
	if r, err := roundTripProto(&noFollow, req, 2); err != nil || r.Status != http.StatusPermanentRedirect {
		t.Errorf("h2c redirect: %v %+v", err, r)
	}
}

// roundTripProto is roundTrip that also checks the HTTP major version.
func roundTripProto(c *http.Client, req *http.Request, major int) (*result, error) {
	var got int
	c.Transport = protoSpy{c.Transport, &got}
	r, err := roundTrip(c, req)
	if err == nil && got != major {
		err = fmt.Errorf("HTTP/%d, want HTTP/%d", got, major)
	}
	return r, err
}

type protoSpy struct {
	rt    http.RoundTripper
	major *int
}

func (p protoSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(req)
	if err == nil {
		*p.major = resp.ProtoMajor
	}
	return resp, err
}

func TestTLSRotation(t *testing.T) {
	ctx := context.Background()
	ns := "tls-rot"
	newBackends(t, ns, 1, "tls-web")
	ca := newTestCA(t)
	sec := ca.tlsSecret(t, ns, "rot", 100, "rot.tls.test")
	if err := harness.CreateAll(ctx, env.cp.Client, sec,
		tlsIngress(ns, "rot", map[string][]string{"rot": {"rot.tls.test"}}, "rot.tls.test")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, presents("rot.tls.test", "rot.tls.test"))
	// A connection opened before the rotations keeps working through them.
	open := httpsClient(t, ca, false)
	first := true
	get := func() error {
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "GET", "https://rot.tls.test/", nil)
		r, err := roundTrip(open, req)
		switch {
		case err != nil:
			return err
		case r.Echo == nil:
			return errStatus(r)
		case !first && !reused:
			return errors.New("the request did not reuse the connection opened before the rotations")
		}
		first = false
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	const rotations = 9
	var lat []time.Duration
	for i := 1; i <= rotations; i++ {
		serial := int64(100 + i)
		c, k := ca.issue(t, serial, "rot.tls.test")
		sec.Data = map[string][]byte{corev1.TLSCertKey: c, corev1.TLSPrivateKeyKey: k}
		start := time.Now()
		if err := env.cp.Client.Update(ctx, sec); err != nil {
			t.Fatal(err)
		}
		for {
			leaf, err := handshake("rot.tls.test")
			if err == nil && leaf.SerialNumber.Int64() == serial {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("rotation %d: the new certificate was not presented within 10 s (last: %v)", i, err)
			}
		}
		lat = append(lat, time.Since(start))
		if err := get(); err != nil {
			t.Fatalf("the connection opened before rotation %d: %v", i, err)
		}
	}
	slices.Sort(lat)
	t.Logf("certificate rotation, Secret update to the first handshake with the new certificate, %d rotations: median %v, worst %v (all %v)",
		rotations, lat[rotations/2], lat[rotations-1], lat)
	if lat[rotations-1] > 2*time.Second {
		t.Errorf("worst rotation latency %v, want well under 2 s", lat[rotations-1])
	}
}
