package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/kakehi/kakehi/pkg/route"
)

// routeProto publishes a table where every host and path goes to a
// cluster of addrs speaking proto, with policy p.
func (h *harness) routeProto(proto route.BackendProtocol, p *route.Policy, addrs ...string) {
	h.version++
	g := h.reg.Begin()
	b := route.NewBuilder(h.version)
	var bs []*route.Backend
	for _, a := range addrs {
		bs = append(bs, g.Backend(a, "ns/pod-"+a))
	}
	tgt := &route.Target{Namespace: "ns", Ingress: "ing", Service: "svc", Port: "80",
		Cluster: route.NewCluster("ns/svc:80", bs, "").WithProtocol(proto), Policy: p}
	b.Add("", route.Rule{Kind: route.PathPrefix, Path: "/", Target: tgt})
	h.store.Publish(b.Build())
	g.Commit()
}

func postFields() []string {
	return []string{":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/up"}
}

// expectRST reads frames until a RST_STREAM on id (bounded) and returns
// its code.
func (c *rawH2) expectRST(id uint32) http2.ErrCode {
	c.t.Helper()
	for i := 0; i < 100; i++ {
		if f, ok := c.read().(*http2.RSTStreamFrame); ok && f.StreamID == id {
			return f.ErrCode
		}
	}
	c.t.Fatalf("no RST_STREAM on stream %d", id)
	return 0
}

// TestH2BodyLimitStreamedToHTTP1 checks the global --proxy-max-request-body
// on an HTTP/2 body without content-length: 413, RST_STREAM(NO_ERROR),
// and the DATA over the limit never reaches the HTTP/1.1 backend.
func TestH2BodyLimitStreamedToHTTP1(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRequestBody = 100 })
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dialH2()
	c.headers(1, false, postFields()...)
	if err := c.fr.WriteData(1, false, bytes.Repeat([]byte("a"), 80)); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteData(1, false, bytes.Repeat([]byte("z"), 80)); err != nil {
		t.Fatal(err)
	}
	r := c.until(1)
	if r.status != "413" || !r.ended {
		t.Fatalf("got %+v, want a complete 413", r)
	}
	if code := c.expectRST(1); code != http2.ErrCodeNo {
		t.Errorf("RST_STREAM %v, want NO_ERROR", code)
	}
	h.idle()
	if strings.Contains(b.rawBytes(), "z") {
		t.Errorf("DATA over the limit reached the backend")
	}
	if !strings.Contains(h.log.String(), `"status":413`) {
		t.Errorf("access log: %s", h.log.String())
	}
}

// TestH2BodyLimitContentLengthGlobal: the global limit applies to
// content-length on routes without a policy.
func TestH2BodyLimitContentLengthGlobal(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRequestBody = 10 })
	b := newBackend(t, "b")
	h.route(to(b.addr))
	cl := h.h2Client()
	if resp, _ := h2Do(t, cl, h2Req(t, h, "POST", "a", "/", strings.NewReader(strings.Repeat("x", 11)))); resp.StatusCode != 413 {
		t.Errorf("11 bytes: %d, want 413", resp.StatusCode)
	}
	if resp, _ := h2Do(t, cl, h2Req(t, h, "POST", "a", "/", strings.NewReader(strings.Repeat("x", 10)))); resp.StatusCode != 200 {
		t.Errorf("10 bytes: %d, want 200", resp.StatusCode)
	}
	if len(b.got()) != 1 {
		t.Errorf("backend got %d requests, want 1", len(b.got()))
	}
}

// TestH2BodyLimitStreamedToH2C: the route's limit on an h2c backend; the
// backend has read the bytes within the limit and never sees the rest.
func TestH2BodyLimitStreamedToH2C(t *testing.T) {
	first, rest := make(chan struct{}), make(chan string, 1)
	be := newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 80)
		_, err := io.ReadFull(r.Body, buf)
		close(first)
		if err != nil {
			rest <- "error: " + err.Error()
			return
		}
		more, _ := io.ReadAll(r.Body)
		rest <- string(more)
	})
	h := newHarness(t) // global default limit is large
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.MaxRequestBody = 100 }), be.addr)
	c := h.dialH2()
	c.headers(1, false, postFields()...)
	if err := c.fr.WriteData(1, false, bytes.Repeat([]byte("a"), 80)); err != nil {
		t.Fatal(err)
	}
	<-first
	if err := c.fr.WriteData(1, false, bytes.Repeat([]byte("z"), 80)); err != nil {
		t.Fatal(err)
	}
	r := c.until(1)
	if r.status != "413" || !r.ended {
		t.Fatalf("got %+v, want a complete 413", r)
	}
	if code := c.expectRST(1); code != http2.ErrCodeNo {
		t.Errorf("RST_STREAM %v, want NO_ERROR", code)
	}
	if got := <-rest; strings.Contains(got, "z") {
		t.Errorf("backend read %q after the limit", got)
	}
}

// TestH2BodyLimitAfterResponseHead: once the response head is sent, a body
// going over the limit resets the stream (CANCEL).
func TestH2BodyLimitAfterResponseHead(t *testing.T) {
	for _, proto := range []route.BackendProtocol{route.ProtocolH2C, route.ProtocolHTTP1} {
		var addr string
		if proto == route.ProtocolH2C {
			addr = newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				_, _ = io.Copy(io.Discard, r.Body)
			}).addr
		} else {
			addr = newRawBackend(t, func(_ *backend, c net.Conn) {
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab")
				_, _ = io.Copy(io.Discard, br)
			}).addr
		}
		h := newHarness(t)
		h.routeProto(proto, pol(func(p *route.Policy) { p.MaxRequestBody = 100 }), addr)
		c := h.dialH2()
		c.headers(1, false, postFields()...)
		if err := c.fr.WriteData(1, false, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if f, ok := c.read().(*http2.MetaHeadersFrame); ok && f.StreamID == 1 {
				break
			}
			if i > 100 {
				t.Fatal("no response head")
			}
		}
		if err := c.fr.WriteData(1, false, bytes.Repeat([]byte("z"), 200)); err != nil {
			t.Fatal(err)
		}
		if r := c.until(1); !r.gotRST || r.rst != http2.ErrCodeCancel {
			t.Fatalf("got %+v, want RST_STREAM(CANCEL)", r)
		}
	}
}
