package proxy

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// rsaCertFor returns a self-signed RSA-2048 certificate for names.
func rsaCertFor(t *testing.T, names ...string) *tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestTLSServesRSAAndECDSACertificates: hosts with RSA and ECDSA keys are
// both served, over TLS 1.3 and over TLS 1.2 with its ECDHE-RSA and
// ECDHE-ECDSA AEAD suites.
func TestTLSServesRSAAndECDSACertificates(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	hosts := map[string]route.TLSHost{
		"rsa.example.com":   {Cert: rsaCertFor(t, "rsa.example.com")},
		"ecdsa.example.com": {Cert: certFor(t, "ecdsa.example.com")},
	}
	h.routeTLS(hosts, nil, rule{path: "/", service: "web", addrs: []string{be.addr}})
	for _, tc := range []struct {
		sni     string
		version uint16
	}{
		{"rsa.example.com", tls.VersionTLS13}, {"rsa.example.com", tls.VersionTLS12},
		{"ecdsa.example.com", tls.VersionTLS13}, {"ecdsa.example.com", tls.VersionTLS12},
	} {
		conn, err := h.dialTLS(&tls.Config{ServerName: tc.sni, InsecureSkipVerify: true,
			MinVersion: tc.version, MaxVersion: tc.version, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("%s over %x: %v", tc.sni, tc.version, err)
		}
		st := conn.ConnectionState()
		if got := leafNames(conn); got != tc.sni || st.Version != tc.version {
			t.Errorf("%s: got certificate %q over %x", tc.sni, got, st.Version)
		}
		if tc.version == tls.VersionTLS12 && tls.CipherSuiteName(st.CipherSuite) == "" {
			t.Errorf("%s: unknown TLS 1.2 suite %x", tc.sni, st.CipherSuite)
		}
	}
}
