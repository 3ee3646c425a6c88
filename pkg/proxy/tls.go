package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// TLSOptions configure the HTTPS listener (ServeTLS).
type TLSOptions struct {
	// Fallback is the certificate presented to TLS clients whose server
	// name no TLS host covers when the route table has no default
	// certificate (--default-tls-secret) either. nil makes New generate a
	// self-signed one (SelfSignedCertificate).
	Fallback *tls.Certificate
	// RedirectPort is the port written in the Location of the 308
	// redirects from plain HTTP to HTTPS; 0 and 443 leave the port out.
	RedirectPort int
}

// tlsServer is the Server's HTTPS state, immutable after New.
type tlsServer struct {
	store    *route.Store
	fallback *tls.Certificate
	cfg      *tls.Config
	port     string // ":8443" for redirects, or "" for 443
}

// init builds the listener's TLS settings (tlsConfig, ALPN h2 then
// http/1.1) around a GetCertificate that also records, on the tlsWire the
// handshake runs over, which certificate it presented: the 421 check needs
// that pointer and tls.ConnectionState does not give it.
func (t *tlsServer) init(s *Server, o TLSOptions) error {
	t.store, t.fallback = s.store, o.Fallback
	if t.fallback == nil {
		c, err := SelfSignedCertificate(time.Now())
		if err != nil {
			return err
		}
		t.fallback = c
	}
	t.port = ""
	if o.RedirectPort != 0 && o.RedirectPort != 443 {
		t.port = ":" + strconv.Itoa(o.RedirectPort)
	}
	t.cfg = tlsConfig(t.store, t.fallback, []string{"h2", "http/1.1"})
	get := t.cfg.GetCertificate
	t.cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hello)
		if w, ok := hello.Conn.(*tlsWire); ok {
			w.cert = c
		}
		return c, err
	}
	return nil
}

// tlsWire is the client's TCP connection as the TLS layer sees it: it
// carries the certificate GetCertificate chose for this connection's
// handshake (written and read by the connection's goroutine only).
type tlsWire struct {
	net.Conn
	tc   *tls.Conn
	cert *tls.Certificate
}

// wrap returns nc wrapped for a server-side TLS handshake.
func (t *tlsServer) wrap(nc net.Conn) *tlsWire {
	w := &tlsWire{Conn: nc}
	w.tc = tls.Server(w, t.cfg)
	return w
}

// ServeTLS is Serve for TLS: each accepted connection completes a TLS
// handshake within Options.ReadHeaderTimeout (failures are counted in
// kakehi_tls_handshake_errors_total), then speaks HTTP/2 when ALPN chose
// "h2" and HTTP/1.1 otherwise, with X-Forwarded-Proto https. Certificates
// come from the current route table by SNI (see tlsConfig), so a rotated
// certificate is used by the next handshake; open connections keep
// theirs. A request for a host that the connection's certificate does not
// serve gets 421 (see misdirected). Shutdown and Close treat these
// connections like Serve's.
func (s *Server) ServeTLS(l net.Listener) error { return s.acceptLoop(l, true) }

// serveTLS runs a connection accepted by ServeTLS until it closes.
func (c *conn) serveTLS(w *tlsWire) {
	defer c.finish()
	cs, ok := c.handshake(w)
	if !ok {
		return
	}
	if cs.NegotiatedProtocol == "h2" {
		c.srv.serveH2(c, nil, &cs)
		return
	}
	for c.awaitRequest() {
		if !c.serveRequest() {
			return
		}
	}
}

// handshake runs the TLS handshake under the read-header deadline. The
// connection counts as idle meanwhile, so that Shutdown cuts it short like
// a keep-alive connection waiting for a request. It records the
// certificate presented; a resumed session presents none, so the one the
// table gives for the server name now stands in for it.
func (c *conn) handshake(w *tlsWire) (tls.ConnectionState, bool) {
	s := c.srv
	if !c.state.CompareAndSwap(connActive, connIdle) || s.shutting.Load() {
		return tls.ConnectionState{}, false
	}
	_ = c.tlsc.SetDeadline(time.Now().Add(s.opt.ReadHeaderTimeout))
	err := c.tlsc.Handshake()
	if !c.state.CompareAndSwap(connIdle, connActive) {
		return tls.ConnectionState{}, false // Shutdown
	}
	if err != nil {
		if !errors.Is(err, io.EOF) { // EOF: closed before a hello (TCP probes)
			s.m.TLSHandshakeFailed()
		}
		return tls.ConnectionState{}, false
	}
	_ = c.tlsc.SetDeadline(time.Time{})
	cs := c.tlsc.ConnectionState()
	c.cert = w.cert
	if c.cert == nil {
		c.cert = certificateFor(s.store, s.tls.fallback, cs.ServerName)
	}
	return cs, true
}

// readIdleTLS waits for the next request on an HTTP/1.1 TLS connection
// without holding a stream: it reads one byte into the connection, and
// only then checks a stream out (readHead reads the rest, which the TLS
// layer has usually decrypted already). The TLS layer keeps its own
// record buffers (crypto/tls allocates them; they are not pooled).
func (c *conn) readIdleTLS() error {
	c.release()
	n, err := c.tlsc.Read(c.one[:])
	if n == 0 {
		if err == nil {
			err = io.EOF
		}
		return err
	}
	if err := c.acquire(); err != nil {
		return err
	}
	c.st.Front[headRoom] = c.one[0]
	c.fr, c.fw = headRoom, headRoom+1
	return nil
}

// acmePrefix is the path of ACME HTTP-01 challenges (RFC 8555 §8.3),
// which must be answered over plain HTTP: never redirected.
const acmePrefix = "/.well-known/acme-challenge/"

// hostAnswer returns the answer the proxy gives by itself, before routing,
// to a request for authority (Host or :authority) and target (path and
// query): on a plain connection, 308 to HTTPS for a host whose TLS
// settings redirect (ACME challenges excepted); on a TLS connection, 421
// when the connection's certificate does not serve the host.
func (c *conn) hostAnswer(authority, target string) (answer, bool) {
	s := c.srv
	if c.tlsc != nil {
		if !misdirected(s.store, s.tls.fallback, c.cert, authority) {
			return answer{}, false
		}
		return answer{status: 421, cause: causeMisdirected,
			detail: "Misdirected Request: the certificate of this TLS connection is not the one for this host; connect again with the host as the server name (SNI)"}, true
	}
	if c.proto != "http" || strings.HasPrefix(target, acmePrefix) {
		return answer{}, false
	}
	tbl := s.store.Load()
	if tbl == nil || !tbl.RedirectHTTP(authority) {
		return answer{}, false
	}
	return answer{status: 308, detail: "Permanent Redirect: this host is served over HTTPS",
		location: s.tls.location(authority, target)}, true
}

// location returns the HTTPS URL of a redirected request.
func (t *tlsServer) location(authority, target string) string {
	h := hostOnly(authority)
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	if !strings.HasPrefix(target, "/") {
		target = "/" // OPTIONS *
	}
	return "https://" + h + t.port + target
}
