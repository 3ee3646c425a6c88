package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// SelfSignedCertificate returns a fresh ECDSA P-256 certificate for
// "kakehi-default", valid for a year, for TLS clients whose server name no
// Ingress covers when no --default-tls-secret is given. Browsers will not
// trust it, which is the point: it covers nothing.
func SelfSignedCertificate(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kakehi-default", Organization: []string{"Kakehi"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"kakehi-default"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// tlsConfig returns the TLS settings of the HTTPS listener: TLS 1.2 and 1.3
// only, AEAD suites with forward secrecy for 1.2, session resumption by
// tickets (Go's default, keys rotated by crypto/tls), and the certificate
// chosen per handshake from the current route table by SNI (exact host,
// then one-label wildcard, then the table's default, then fallback).
// protos is the ALPN list, most preferred first.
func tlsConfig(store *route.Store, fallback *tls.Certificate, protos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: protos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certificateFor(store, fallback, hello.ServerName), nil
		},
	}
}

// certificateFor returns the certificate to present for serverName.
func certificateFor(store *route.Store, fallback *tls.Certificate, serverName string) *tls.Certificate {
	if t := store.Load(); t != nil {
		if c := t.Certificate(serverName); c != nil {
			return c
		}
	}
	return fallback
}

// misdirected reports whether a request for host arriving on a TLS
// connection that negotiated cert must be answered 421 Misdirected
// Request (RFC 9110 §15.5.20): host has TLS settings in the table, the
// table would present another certificate for it, and the negotiated
// certificate does not cover it either. A certificate that covers the host
// is accepted even after a rotation replaced it, so open connections keep
// working; hosts without TLS settings are served with whatever certificate
// the connection has, as with a default certificate.
func misdirected(store *route.Store, fallback, negotiated *tls.Certificate, host string) bool {
	t := store.Load()
	if t == nil || t.TLS(host) == nil {
		return false
	}
	if certificateFor(store, fallback, host) == negotiated {
		return false
	}
	if negotiated == nil || negotiated.Leaf == nil {
		return true
	}
	return negotiated.Leaf.VerifyHostname(hostOnly(host)) != nil
}

// hostOnly strips a port and IPv6 brackets from a Host value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}
