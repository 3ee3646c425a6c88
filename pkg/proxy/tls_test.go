package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// tlsHarness is a harness that also serves TLS on 127.0.0.1.
type tlsHarness struct {
	*harness
	tlsAddr string
}

func newTLSHarness(t *testing.T, opts ...harnessOpt) *tlsHarness {
	t.Helper()
	h := newHarness(t, opts...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeTLS(l) }()
	t.Cleanup(func() { // runs before the harness's close
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeTLS returned %v, want ErrServerClosed", err)
		}
	})
	return &tlsHarness{harness: h, tlsAddr: l.Addr().String()}
}

// routeTLS publishes rules (as harness.route) plus TLS hosts and a default
// certificate (nil for none).
func (h *tlsHarness) routeTLS(hosts map[string]route.TLSHost, def *tls.Certificate, rules ...rule) {
	h.version++
	g := h.reg.Begin()
	b := route.NewBuilder(h.version)
	for _, r := range rules {
		var bs []*route.Backend
		for _, a := range r.addrs {
			bs = append(bs, g.Backend(a, "ns/pod-"+a))
		}
		tgt := &route.Target{Namespace: "ns", Ingress: "ing", Service: r.service, Port: "80",
			Cluster: route.NewCluster("ns/"+r.service+":80", bs, r.reason)}
		b.Add(r.host, route.Rule{Kind: route.PathPrefix, Path: r.path, Target: tgt})
	}
	for host, th := range hosts {
		b.AddTLS(host, th)
	}
	b.SetDefaultCertificate(def)
	h.store.Publish(b.Build())
	g.Commit()
}

// dialTLS completes a handshake with the TLS listener.
func (h *tlsHarness) dialTLS(cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	nc, err := tls.DialWithDialer(d, "tcp", h.tlsAddr, cfg)
	if err == nil {
		h.t.Cleanup(func() { _ = nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	}
	return nc, err
}

// tlsClient dials with SNI name and ALPN http/1.1 and returns a client.
func (h *tlsHarness) tlsClient(name string, cache tls.ClientSessionCache) (*client, *tls.Conn) {
	h.t.Helper()
	tc, err := h.dialTLS(&tls.Config{ServerName: name, InsecureSkipVerify: true,
		NextProtos: []string{"http/1.1"}, ClientSessionCache: cache})
	if err != nil {
		h.t.Fatalf("TLS dial %s: %v", name, err)
	}
	return &client{t: h.t, nc: tc, br: bufio.NewReader(tc)}, tc
}

func leafNames(tc *tls.Conn) string {
	return strings.Join(tc.ConnectionState().PeerCertificates[0].DNSNames, ",")
}

func TestTLSCertificateBySNI(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	shop, wild := certFor(t, "shop.example.com"), certFor(t, "*.example.com")
	hosts := map[string]route.TLSHost{
		"shop.example.com": {Cert: shop}, "*.example.com": {Cert: wild},
		"broken.example.org": {}, // its Secret is missing: the default certificate
	}
	h.routeTLS(hosts, nil, rule{path: "/", service: "web", addrs: []string{be.addr}})
	for _, tc := range []struct{ sni, want string }{
		{"shop.example.com", "shop.example.com"},
		{"api.example.com", "*.example.com"},
		{"SHOP.Example.com", "shop.example.com"},
		{"other.org", "kakehi-default"},
		{"broken.example.org", "kakehi-default"},
		{"", "kakehi-default"},
	} {
		c, conn := h.tlsClient(tc.sni, nil)
		if got := leafNames(conn); got != tc.want {
			t.Errorf("SNI %q: certificate for %q, want %q", tc.sni, got, tc.want)
		}
		host := tc.sni
		if host == "" {
			host = "other.org"
		}
		if r := c.roundTrip(get(host, "/")); r.StatusCode != 200 {
			t.Errorf("SNI %q: status %d %q", tc.sni, r.StatusCode, r.body)
		}
	}
	// The table's default certificate (--default-tls-secret) beats the
	// self-signed one.
	def := certFor(t, "default.example.net")
	h.routeTLS(hosts, def, rule{path: "/", service: "web", addrs: []string{be.addr}})
	for _, sni := range []string{"other.org", "broken.example.org"} {
		if _, conn := h.tlsClient(sni, nil); leafNames(conn) != "default.example.net" {
			t.Errorf("SNI %q with a table default: got %q", sni, leafNames(conn))
		}
	}
}

func TestTLSALPNAndForwardedProto(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	h.routeTLS(map[string]route.TLSHost{"shop.example.com": {Cert: certFor(t, "shop.example.com")}}, nil,
		rule{path: "/", service: "web", addrs: []string{be.addr}})
	_, port, _ := net.SplitHostPort(h.tlsAddr)

	c, conn := h.tlsClient("shop.example.com", nil)
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN %q, want http/1.1", p)
	}
	if r := c.roundTrip(get("shop.example.com", "/one")); r.StatusCode != 200 || r.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1 over TLS: %d %s", r.StatusCode, r.Proto)
	}

	tr := &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	req, _ := http.NewRequest("GET", "https://"+h.tlsAddr+"/two", nil)
	req.Host = "shop.example.com"
	resp, body := h2Do(t, hc, req)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("h2 over TLS: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	got := be.got()
	if len(got) != 2 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	for _, r := range got {
		if p := r.header.Get("X-Forwarded-Proto"); p != "https" {
			t.Errorf("%s: X-Forwarded-Proto %q, want https", r.target, p)
		}
		if p := r.header.Get("X-Forwarded-Port"); p != port {
			t.Errorf("%s: X-Forwarded-Port %q, want %s", r.target, p, port)
		}
	}
}

func TestTLSOldVersionsRefused(t *testing.T) {
	h := newTLSHarness(t)
	_, err := h.dialTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	waitFor(t, "the handshake failure to be counted", 5*time.Second, func() bool {
		return h.metric(metrics.TLSHandshakeErrors) == 1
	})
	if conn, err := h.dialTLS(&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	} else if conn.ConnectionState().Version != tls.VersionTLS12 {
		t.Fatalf("version %x", conn.ConnectionState().Version)
	}
}

func TestTLSSessionResumption(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	h.routeTLS(map[string]route.TLSHost{"shop.example.com": {Cert: certFor(t, "shop.example.com")},
		"other.example.org": {Cert: certFor(t, "other.example.org")}}, nil,
		rule{path: "/", service: "web", addrs: []string{be.addr}})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cache := tls.NewLRUClientSessionCache(4)
		dial := func() (*client, *tls.Conn) {
			tc, err := h.dialTLS(&tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true,
				NextProtos: []string{"http/1.1"}, ClientSessionCache: cache, MaxVersion: v})
			if err != nil {
				t.Fatal(err)
			}
			return &client{t: t, nc: tc, br: bufio.NewReader(tc)}, tc
		}
		c1, tc1 := dial()
		// A response read makes the client take the TLS 1.3 ticket.
		if r := c1.roundTrip(get("shop.example.com", "/")); r.StatusCode != 200 || tc1.ConnectionState().DidResume {
			t.Fatalf("first connection: %d resumed=%v", r.StatusCode, tc1.ConnectionState().DidResume)
		}
		c2, tc2 := dial()
		if !tc2.ConnectionState().DidResume {
			t.Fatalf("version %x: second connection did not resume", v)
		}
		// The resumed connection stands for shop's certificate: its host is
		// served, another TLS host is misdirected.
		if r := c2.roundTrip(get("shop.example.com", "/")); r.StatusCode != 200 {
			t.Fatalf("resumed: %d %q", r.StatusCode, r.body)
		}
		if r := c2.roundTrip(get("other.example.org", "/")); r.StatusCode != 421 {
			t.Fatalf("resumed, other host: %d", r.StatusCode)
		}
	}
}

func TestTLSMisdirectedRequest(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	a, b := certFor(t, "a.example.com"), certFor(t, "b.example.org")
	h.routeTLS(map[string]route.TLSHost{"a.example.com": {Cert: a}, "b.example.org": {Cert: b}}, nil,
		rule{path: "/", service: "web", addrs: []string{be.addr}})
	c, _ := h.tlsClient("a.example.com", nil)
	r := c.roundTrip(get("b.example.org", "/"))
	if r.StatusCode != 421 || !strings.Contains(r.body, "certificate") {
		t.Fatalf("HTTP/1.1: %d %q, want 421 explaining why", r.StatusCode, r.body)
	}
	if r := c.roundTrip(get("a.example.com", "/")); r.StatusCode != 200 {
		t.Fatalf("after a 421 the connection serves its own host: %d %q", r.StatusCode, r.body)
	}
	if r := c.roundTrip(get("plain.example.net", "/")); r.StatusCode != 200 {
		t.Fatalf("a host without TLS settings: %d", r.StatusCode)
	}
	// A rotated certificate for a.example.com: the open connection keeps
	// working for it.
	h.routeTLS(map[string]route.TLSHost{"a.example.com": {Cert: certFor(t, "a.example.com")}, "b.example.org": {Cert: b}}, nil,
		rule{path: "/", service: "web", addrs: []string{be.addr}})
	if r := c.roundTrip(get("a.example.com", "/")); r.StatusCode != 200 {
		t.Fatalf("after rotation: %d", r.StatusCode)
	}

	// HTTP/2: the same check on :authority.
	hc := h.rawH2TLS("a.example.com")
	hc.headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "b.example.org", ":path", "/")
	hc.headers(3, true, ":method", "GET", ":scheme", "https", ":authority", "a.example.com", ":path", "/")
	got := map[uint32]string{}
	for len(got) < 2 {
		if f, ok := hc.read().(*http2.MetaHeadersFrame); ok {
			got[f.StreamID] = f.PseudoValue("status")
		}
	}
	if got[1] != "421" || got[3] != "200" {
		t.Fatalf("HTTP/2 statuses %v, want 421 for stream 1 and 200 for stream 3", got)
	}
	if v := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseMisdirected); v != 2 {
		t.Errorf("misdirected counted %v times, want 2", v)
	}
	if n := len(be.got()); n != 4 {
		t.Errorf("backend saw %d requests, want 4", n)
	}
}

// rawH2TLS opens an HTTP/2 connection over TLS (ALPN h2) with server name
// sni and exchanges SETTINGS.
func (h *tlsHarness) rawH2TLS(sni string) *rawH2 {
	h.t.Helper()
	tc, err := h.dialTLS(&tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		h.t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		h.t.Fatalf("ALPN %q", p)
	}
	c := &rawH2{t: h.t, nc: tc, settings: map[http2.SettingID]uint32{}}
	c.fr = http2.NewFramer(tc, tc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(tc, h2Preface); err != nil {
		h.t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		h.t.Fatal(err)
	}
	if _, ok := c.read().(*http2.SettingsFrame); !ok {
		h.t.Fatal("first frame is not SETTINGS")
	}
	if err := c.fr.WriteSettingsAck(); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestHTTPRedirectsToHTTPS(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	cert := certFor(t, "shop.example.com", "*.example.com", "keep.example.com")
	h.routeTLS(map[string]route.TLSHost{
		"shop.example.com": {Cert: cert, RedirectHTTP: true},
		"*.example.com":    {Cert: cert, RedirectHTTP: true},
		"keep.example.com": {Cert: cert}, // kakehi.dev/ssl-redirect: "false"
	}, nil, rule{path: "/", service: "web", addrs: []string{be.addr}})
	c := h.dial()
	for _, tc := range []struct{ req, loc string }{
		{get("shop.example.com", "/a/b?x=1&y=2"), "https://shop.example.com/a/b?x=1&y=2"},
		{get("Api.Example.com:8080", "/"), "https://Api.Example.com/"},
		{"POST http://shop.example.com/form?q HTTP/1.1\r\nHost: shop.example.com\r\nContent-Length: 3\r\n\r\nabc", "https://shop.example.com/form?q"},
	} {
		r := c.roundTrip(tc.req)
		if r.StatusCode != 308 || r.Header.Get("Location") != tc.loc {
			t.Errorf("%q: %d Location %q, want 308 %q", tc.req, r.StatusCode, r.Header.Get("Location"), tc.loc)
		}
	}
	for _, req := range []string{
		get("shop.example.com", "/.well-known/acme-challenge/token"),
		get("keep.example.com", "/"),
		get("plain.example.net", "/"),
	} {
		if r := c.roundTrip(req); r.StatusCode != 200 {
			t.Errorf("%q: %d, want 200 from the backend", req, r.StatusCode)
		}
	}
	if n := len(be.got()); n != 3 {
		t.Errorf("backend saw %d requests, want 3 (redirects never reach it)", n)
	}
	// h2c with prior knowledge is plain HTTP too.
	hc := h.h2Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", "http://"+h.addr+"/h2?z", nil)
	req.Host = "shop.example.com"
	resp, _ := h2Do(t, hc, req)
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://shop.example.com/h2?z" {
		t.Errorf("h2c: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Over TLS the same hosts are served, not redirected.
	tc, _ := h.tlsClient("shop.example.com", nil)
	if r := tc.roundTrip(get("shop.example.com", "/")); r.StatusCode != 200 {
		t.Errorf("over TLS: %d", r.StatusCode)
	}
}

func TestRedirectLocationPort(t *testing.T) {
	var ts tlsServer
	for _, tc := range []struct {
		port            int
		auth, tgt, want string
	}{
		{443, "a.example", "/x", "https://a.example/x"},
		{8443, "a.example:80", "/x?y", "https://a.example:8443/x?y"},
		{0, "[::1]:80", "*", "https://[::1]/"},
	} {
		if err := ts.init(&Server{}, TLSOptions{Fallback: &tls.Certificate{}, RedirectPort: tc.port}); err != nil {
			t.Fatal(err)
		}
		if got := ts.location(tc.auth, tc.tgt); got != tc.want {
			t.Errorf("port %d %s %s: %q, want %q", tc.port, tc.auth, tc.tgt, got, tc.want)
		}
	}
}

func TestTLSIdleConnectionHoldsNoStream(t *testing.T) {
	h := newTLSHarness(t)
	be := newBackend(t, "web")
	h.routeTLS(nil, nil, rule{path: "/", service: "web", addrs: []string{be.addr}})
	c, _ := h.tlsClient("shop.example.com", nil)
	for i := 0; i < 3; i++ {
		if r := c.roundTrip(get("shop.example.com", "/")); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
		waitFor(t, "the idle TLS connection to give its stream back", 5*time.Second, func() bool {
			return h.srv.Pool().InUse() == 0
		})
	}
	// Pipelined requests still work with the one-byte first read.
	c.send(get("shop.example.com", "/1") + get("shop.example.com", "/2"))
	for i := 0; i < 2; i++ {
		if r := c.read("GET"); r.StatusCode != 200 {
			t.Fatalf("pipelined %d: %d", i, r.StatusCode)
		}
	}
}

func TestTLSShutdown(t *testing.T) {
	h := newTLSHarness(t)
	release := make(chan struct{})
	slow := newRawBackend(t, func(b *backend, c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		<-release
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	h.routeTLS(nil, nil, rule{path: "/", service: "web", addrs: []string{slow.addr}})
	c, _ := h.tlsClient("x.example", nil)
	c.send(get("x.example", "/slow"))
	waitFor(t, "the request to reach the backend", 5*time.Second, func() bool { return slow.connCount() == 1 })
	h2 := h.rawH2TLS("x.example")
	stalled, err := net.Dial("tcp", h.tlsAddr) // a handshake that never starts
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	waitFor(t, "three client connections", 5*time.Second, func() bool { return h.srv.clientConns.Load() == 3 })

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	for {
		if ga, ok := h2.read().(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v", ga.ErrCode)
			}
			break
		}
	}
	_ = stalled.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := stalled.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the connection in its handshake was not closed: %v", err)
	}
	close(release)
	r := c.read("GET")
	if r.StatusCode != 200 || !r.Close {
		t.Fatalf("in-flight response: %d close=%v, want 200 with Connection: close", r.StatusCode, r.Close)
	}
	_ = h2.nc.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestH2SpecTLS runs h2spec over TLS (ALPN h2) against ServeTLS; like
// TestH2Spec it runs only when KAKEHI_H2SPEC=1, and every case must pass.
func TestH2SpecTLS(t *testing.T) {
	if os.Getenv("KAKEHI_H2SPEC") != "1" {
		t.Skip("set KAKEHI_H2SPEC=1 to run h2spec")
	}
	h := newTLSHarness(t)
	b := newBackend(t, "spec")
	h.route(to(b.addr))
	t.Setenv("H2SPEC_ARGS", strings.TrimSpace("-t -k "+os.Getenv("H2SPEC_ARGS")))
	passed, failures := runH2Spec(t, h.tlsAddr)
	t.Logf("TLS port: h2spec %d passed, %d failed", passed, len(failures))
	for _, f := range failures {
		t.Error(f)
	}
	if passed == 0 {
		t.Error("h2spec ran no case")
	}
}
