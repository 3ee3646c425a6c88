package main

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestBenchCert(t *testing.T) {
	c, err := makeBenchCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.VerifyHostname(benchTLSHost) != nil || leaf.VerifyHostname("127.0.0.1") != nil {
		t.Errorf("certificate: %v, names %v %v", leaf.PublicKeyAlgorithm, leaf.DNSNames, leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: benchTLSHost, Roots: c.pool}); err != nil {
		t.Errorf("not verifiable with its own pool: %v", err)
	}
	if sec := c.secret(); sec.Type != "kubernetes.io/tls" || len(sec.Data["tls.crt"]) == 0 || len(sec.Data["tls.key"]) == 0 {
		t.Errorf("secret: %+v", sec)
	}
}

func TestTLSCommandsAndConfigs(t *testing.T) {
	c := &benchCert{certFile: "/w/bench.crt", keyFile: "/w/bench.key", pemFile: "/w/bench.pem"}
	s := &settings{IdleConns: 1000, Forwarded: true}
	wrk := strings.Join(wrkArgv("/w", findScenario("tls-small"), "127.0.0.1:18182", 64, 10*time.Second), " ")
	if !strings.HasSuffix(wrk, " https://127.0.0.1:18182/small") {
		t.Errorf("wrk: %s", wrk)
	}
	h2 := strings.Join(h2loadArgv(findScenario("h2-big"), "127.0.0.1:18083", 4, 25, 10*time.Second, ""), " ")
	if !strings.HasSuffix(h2, " --connect-to=127.0.0.1:18083 https://"+benchTLSHost+":18083/big") {
		t.Errorf("h2load: %s", h2)
	}
	ng := nginxProxyConf("/w", s, 65536, 64, c)
	for _, want := range []string{"listen 127.0.0.1:18182 ssl http2", "ssl_certificate /w/bench.crt;", "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_session_tickets on;", "Ciphersuites TLS_AES_128_GCM_SHA256:"} {
		if !strings.Contains(ng, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	if strings.Contains(nginxProxyConf("/w", s, 65536, 64, nil), "ssl") {
		t.Errorf("nginx config has TLS outside the TLS scenarios")
	}
	hp := haproxyConf(s, 65536, 64, c)
	for _, want := range []string{"bind 127.0.0.1:18282 backlog 4096 ssl crt /w/bench.pem alpn h2,http/1.1", "ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:", "ssl-min-ver TLSv1.2"} {
		if !strings.Contains(hp, want) {
			t.Errorf("HAProxy config lacks %q", want)
		}
	}
	if strings.Contains(haproxyConf(s, 65536, 64, nil), " ssl ") {
		t.Errorf("HAProxy config has TLS outside the TLS scenarios")
	}
}
