package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}

// harness is a proxy serving on 127.0.0.1 with its own route store,
// registry, metrics registry and access log.
type harness struct {
	t       testing.TB
	srv     *Server
	addr    string
	store   *route.Store
	reg     *route.Registry
	prom    *prometheus.Registry
	log     *syncBuffer
	serveCh chan error
	version uint64
}

type harnessOpt func(*Options)

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	return newHarnessWith(t, nil, opts...)
}

// newHarnessWith is newHarness with the access log going to w (nil: the
// harness's own buffer).
func newHarnessWith(t testing.TB, w io.Writer, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, store: route.NewStore(), prom: prometheus.NewRegistry(), log: &syncBuffer{}}
	if w == nil {
		w = h.log
	}
	m := metrics.NewProxy()
	if err := m.Register(h.prom); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.DrainGrace = 0
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(Config{Store: h.store, Metrics: m, AccessLog: w, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.reg = route.NewRegistry(srv.BackendGone)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	h.serveCh = make(chan error, 1)
	go func() { h.serveCh <- srv.Serve(l) }()
	t.Cleanup(h.close)
	return h
}

// close shuts the proxy down and checks that nothing is left in use.
func (h *harness) close() {
	t := h.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-h.serveCh; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if n := h.srv.Pool().InUse(); n != 0 {
		t.Errorf("streams in use after shutdown: %d", n)
	}
	if v := h.metric(metrics.ActiveRequests); v != 0 {
		t.Errorf("active requests gauge after shutdown: %v", v)
	}
	if n := h.srv.Pool().Index().Tokens(); n != 0 {
		t.Errorf("stream index holds %d tokens after shutdown", n)
	}
}

// route publishes a table where host/path (Prefix) goes to a cluster of
// the given backend addresses. Each call replaces the whole table.
func (h *harness) route(rules ...rule) {
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
		if r.host == "default" {
			b.SetDefault(tgt)
			continue
		}
		b.Add(r.host, route.Rule{Kind: route.PathPrefix, Path: r.path, Target: tgt})
	}
	h.store.Publish(b.Build())
	g.Commit()
}

type rule struct {
	host, path, service, reason string
	addrs                       []string
}

// to is a shorthand for a rule on every host and path.
func to(addrs ...string) rule {
	return rule{host: "", path: "/", service: "web", addrs: addrs}
}

// metric returns the value of an unlabelled metric, or of the labelled one
// matching labels (name, value pairs); 0 when absent.
func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.prom.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// idle waits until no request is in progress (streams back in the pool).
func (h *harness) idle() {
	h.t.Helper()
	waitFor(h.t, "requests to finish", 5*time.Second, func() bool {
		return h.metric(metrics.ActiveRequests) == 0
	})
}

// syncBuffer is a goroutine-safe bytes.Buffer for the access log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// client is a raw TCP client of the proxy: it sends exact bytes and reads
// responses with net/http's parser, which is independent of the proxy's.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func (h *harness) dial() *client {
	h.t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: h.t, nc: nc, br: bufio.NewReader(nc)}
	h.t.Cleanup(func() { _ = nc.Close() })
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// clientResponse is a response read by a client, body included.
type clientResponse struct {
	*http.Response
	body string
}

// read reads one response to a request with the given method.
func (c *client) read(method string) *clientResponse {
	c.t.Helper()
	r, err := c.tryRead(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

func (c *client) tryRead(method string) (*clientResponse, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	return &clientResponse{resp, string(body)}, nil
}

// roundTrip sends raw and reads the response.
func (c *client) roundTrip(raw string) *clientResponse {
	c.t.Helper()
	c.send(raw)
	method, _, _ := strings.Cut(raw, " ")
	return c.read(method)
}

// expectClosed checks that the proxy closes the connection (EOF) without
// sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		rest, _ := c.br.Peek(c.br.Buffered())
		c.t.Fatalf("expected close, got %q", string(b)+string(rest))
	}
	if isTimeout(err) {
		c.t.Fatal("expected close, connection still open")
	}
}

func get(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

// ---- backends ----

// backend is a test server on 127.0.0.1. By default it is an HTTP/1.1
// server (net/http's parser, independent of the proxy's) that records each
// request and the raw bytes of each connection, and answers 200 with its
// name as the body.
type backend struct {
	t     testing.TB
	name  string
	l     net.Listener
	addr  string
	serve func(b *backend, c net.Conn)
	// handler answers a request in the default serve loop; it returns
	// false to close the connection after.
	handler func(w io.Writer, r *http.Request, body []byte) bool

	mu       sync.Mutex
	conns    []net.Conn
	raw      []*bytes.Buffer // bytes received, per connection
	requests []recorded
	wg       sync.WaitGroup
}

// recorded is one request as the backend saw it.
type recorded struct {
	method, target, host, proto string
	header                      http.Header
	trailer                     http.Header
	body                        string
}

func newBackend(t testing.TB, name string) *backend {
	return startBackend(t, name, (*backend).httpLoop)
}

// newRawBackend starts a backend whose connections are handled by fn.
func newRawBackend(t testing.TB, fn func(b *backend, c net.Conn)) *backend {
	return startBackend(t, "raw", fn)
}

func startBackend(t testing.TB, name string, fn func(b *backend, c net.Conn)) *backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{t: t, name: name, l: l, addr: l.Addr().String(), serve: fn}
	b.handler = b.answerName
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *backend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer c.Close()
			b.serve(b, c)
		}()
	}
}

func (b *backend) close() {
	_ = b.l.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// recorder wraps a connection so that every byte read is recorded.
func (b *backend) recorder(c net.Conn) io.Reader {
	buf := &bytes.Buffer{}
	b.mu.Lock()
	b.raw = append(b.raw, buf)
	b.mu.Unlock()
	return io.TeeReader(c, lockedWriter{&b.mu, buf})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// httpLoop serves HTTP/1.1 requests on c with b.handler.
func (b *backend) httpLoop(c net.Conn) {
	br := bufio.NewReader(b.recorder(c))
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.requests = append(b.requests, recorded{method: r.Method, target: r.RequestURI, host: r.Host,
			proto: r.Proto, header: r.Header, trailer: r.Trailer, body: string(body)})
		b.mu.Unlock()
		if !b.handler(c, r, body) {
			return
		}
	}
}

// answerName answers 200 with the backend's name.
func (b *backend) answerName(w io.Writer, r *http.Request, body []byte) bool {
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Backend: %s\r\n\r\n%s", len(b.name), b.name, b.name)
	return true
}

func (b *backend) got() []recorded {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recorded(nil), b.requests...)
}

func (b *backend) rawBytes() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, r := range b.raw {
		s.Write(r.Bytes())
	}
	return s.String()
}

func (b *backend) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// closedAddr returns an address on which nothing listens: connects to it
// are refused.
func closedAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func itoa(n int) string { return strconv.Itoa(n) }
