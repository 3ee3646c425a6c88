package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The TLS scenarios' server name and the Secret that holds its
// certificate for Kakehi.
const (
	benchTLSHost   = "bench.kakehi.test"
	benchTLSSecret = "bench-tls"
)

// TLS settings shared by the three proxies, as far as each allows: TLS 1.2
// and 1.3, the server's cipher preference, AES-128-GCM first. Kakehi's are
// crypto/tls's (pkg/proxy/tlsconfig.go): TLS 1.3 suites in Go's order
// (AES-128-GCM first with AES hardware) and the ECDHE AEAD suites for 1.2.
const (
	tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
	tls12Suites = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
)

// benchCert is the one ECDSA P-256 certificate of the run, self-signed for
// benchTLSHost and 127.0.0.1, in the files each proxy wants.
type benchCert struct {
	certPEM, keyPEM []byte
	certFile        string // certificate (nginx ssl_certificate)
	keyFile         string // key (nginx ssl_certificate_key)
	pemFile         string // certificate then key (HAProxy crt)
	pool            *x509.CertPool
}

// makeBenchCert generates the certificate into dir.
func makeBenchCert(dir string) (*benchCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: benchTLSHost, Organization: []string{"Kakehi bench"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{benchTLSHost},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &benchCert{
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		certFile: filepath.Join(dir, "bench.crt"),
		keyFile:  filepath.Join(dir, "bench.key"),
		pemFile:  filepath.Join(dir, "bench.pem"),
		pool:     x509.NewCertPool(),
	}
	c.pool.AddCert(leaf)
	for path, data := range map[string][]byte{
		c.certFile: c.certPEM,
		c.keyFile:  c.keyPEM,
		c.pemFile:  append(append([]byte{}, c.certPEM...), c.keyPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// secret is the kubernetes.io/tls Secret that the bench Ingress's spec.tls
// and Kakehi's --default-tls-secret name.
func (c *benchCert) secret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: benchTLSSecret},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: c.certPEM, corev1.TLSPrivateKeyKey: c.keyPEM},
	}
}

// checkServesTLS retries a GET /small over TLS to addr (server name
// benchTLSHost, certificate verified) for up to 30 s, until it answers
// 200 with the small body, exited reports the end of the proxy, or ctx
// ends.
func checkServesTLS(ctx context.Context, addr string, c *benchCert, exited func() error) error {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: benchTLSHost, RootCAs: c.pool},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	once := func() error {
		req, err := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/small", nil)
		if err != nil {
			return err
		}
		req.Host = benchTLSHost
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || n != smallBody) {
			err = fmt.Errorf("GET https://%s/small: status %d, %d body bytes; want 200 and %d", addr, resp.StatusCode, n, smallBody)
		}
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := once()
		if err == nil {
			return nil
		}
		if perr := exited(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving TLS after 30 s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var (
	reSClientCipher = regexp.MustCompile(`New, (\S+), Cipher is (\S+)`)
	reSClientKey    = regexp.MustCompile(`Server Temp Key: ([^\n]+)`)
	reSClientALPN   = regexp.MustCompile(`ALPN protocol: (\S+)`)
)

// probeTLS reports what a client negotiates with addr: `openssl s_client`
// (the libssl that wrk and h2load use, with its default offer) when it is
// installed, else crypto/tls. alpn is the ALPN list offered ("" for none,
// as wrk offers none).
func probeTLS(ctx context.Context, addr, alpn string) (string, error) {
	if _, err := exec.LookPath("openssl"); err == nil {
		return probeOpenSSL(ctx, addr, alpn)
	}
	return probeGo(ctx, addr, alpn)
}

func probeOpenSSL(ctx context.Context, addr, alpn string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := []string{"s_client", "-connect", addr, "-servername", benchTLSHost}
	if alpn != "" {
		args = append(args, "-alpn", alpn)
	}
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	text := string(out)
	m := reSClientCipher.FindStringSubmatch(text)
	if m == nil {
		return "", fmt.Errorf("openssl %s: %v: %s", strings.Join(args, " "), err, firstLines(text, 6))
	}
	desc := "openssl s_client: " + m[1] + ", " + m[2]
	if k := reSClientKey.FindStringSubmatch(text); k != nil {
		desc += ", key exchange " + strings.TrimSpace(k[1])
	}
	if a := reSClientALPN.FindStringSubmatch(text); a != nil {
		desc += ", ALPN " + a[1]
	} else {
		desc += ", no ALPN"
	}
	return desc, nil
}

func probeGo(ctx context.Context, addr, alpn string) (string, error) {
	cfg := &tls.Config{ServerName: benchTLSHost, InsecureSkipVerify: true}
	if alpn != "" {
		cfg.NextProtos = strings.Split(alpn, ",")
	}
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	proto := st.NegotiatedProtocol
	if proto == "" {
		proto = "none"
	}
	return fmt.Sprintf("crypto/tls: %s, %s, key exchange %s, ALPN %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, proto), nil
}
