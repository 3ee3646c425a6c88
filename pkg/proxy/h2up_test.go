package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kakehi/kakehi/pkg/route"
)

// routeH2C publishes a table where every host and path goes to a cluster
// of addrs that speaks h2c.
func (h *harness) routeH2C(addrs ...string) {
	h.version++
	g := h.reg.Begin()
	b := route.NewBuilder(h.version)
	var bs []*route.Backend
	for _, a := range addrs {
		bs = append(bs, g.Backend(a, "ns/pod-"+a))
	}
	tgt := &route.Target{Namespace: "ns", Ingress: "ing", Service: "grpc", Port: "80",
		Cluster: route.NewCluster("ns/grpc:80", bs, "").WithProtocol(route.ProtocolH2C)}
	b.Add("", route.Rule{Kind: route.PathPrefix, Path: "/", Target: tgt})
	h.store.Publish(b.Build())
	g.Commit()
}

// h2cBackend is a real HTTP/2 server (h2c with prior knowledge) on a
// loopback listener.
type h2cBackend struct {
	addr  string
	srv   *http.Server
	conns atomic.Int32
	done  chan struct{}
}

func newH2CBackend(t testing.TB, maxStreams int, h http.HandlerFunc) *h2cBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	b := &h2cBackend{addr: l.Addr().String(), done: make(chan struct{})}
	b.srv = &http.Server{Handler: h, Protocols: &p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		}}
	go func() { defer close(b.done); _ = b.srv.Serve(l) }()
	t.Cleanup(func() { _ = b.srv.Close(); <-b.done })
	return b
}

func TestH2CUnary(t *testing.T) {
	var seen http.Header
	var seenMu sync.Mutex
	be := newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seenMu.Lock()
		seen = r.Header.Clone()
		seen.Set(":proto", r.Proto)
		seen.Set(":trailer", r.Trailer.Get("X-Req-Sum"))
		seenMu.Unlock()
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(append([]byte("echo:"), body...))
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "all good")
	})
	h := newHarness(t)
	h.routeH2C(be.addr)
	c := h.h2Client()
	pr, pw := io.Pipe()
	req := h2Req(t, h, "POST", "svc.example", "/pkg.Svc/Call?x=1", pr)
	req.Header.Set("Te", "trailers")
	req.Trailer = http.Header{"X-Req-Sum": nil}
	go func() {
		_, _ = pw.Write([]byte("hello"))
		req.Trailer.Set("X-Req-Sum", "42")
		_ = pw.Close()
	}()
	resp, body := h2Do(t, c, req)
	if resp.StatusCode != 200 || body != "echo:hello" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("grpc-status trailer %q (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("Grpc-Message"); got != "all good" {
		t.Errorf("grpc-message trailer %q", got)
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	if seen.Get(":proto") != "HTTP/2.0" || seen.Get("Te") != "trailers" || seen.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("backend saw %v", seen)
	}
	if seen.Get(":trailer") != "42" {
		t.Errorf("request trailer at the backend: %q", seen.Get(":trailer"))
	}
	if seen.Get("User-Agent") != "Go-http-client/2.0" {
		t.Errorf("user-agent %q", seen.Get("User-Agent"))
	}
}

// TestH2CStreaming checks that DATA flows both ways while neither side
// has ended: each line the client sends comes back before the next one.
func TestH2CStreaming(t *testing.T) {
	be := newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write([]byte(strings.ToUpper(string(buf[:n]))))
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	})
	h := newHarness(t)
	h.routeH2C(be.addr)
	pr, pw := io.Pipe()
	resp, err := h.h2Client().Do(h2Req(t, h, "POST", "svc.example", "/stream", pr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	for i := 0; i < 5; i++ {
		msg := "msg" + itoa(i)
		if _, err := pw.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadAtLeast(resp.Body, buf, len(msg))
		if err != nil || string(buf[:n]) != strings.ToUpper(msg) {
			t.Fatalf("round %d: %q %v", i, buf[:n], err)
		}
	}
	_ = pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("end: %q %v", rest, err)
	}
}

// TestH2CBackendReset checks that a backend RST_STREAM after the head
// reaches the client as a stream reset, and a client reset reaches the
// backend (its request context ends).
func TestH2CBackendReset(t *testing.T) {
	backendSawCancel := make(chan struct{})
	be := newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler) // RST_STREAM(INTERNAL_ERROR)
		}
		<-r.Context().Done()
		close(backendSawCancel)
	})
	h := newHarness(t)
	h.routeH2C(be.addr)
	c := h.h2Client()
	resp, err := c.Do(h2Req(t, h, "GET", "svc.example", "/abort", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Fatalf("want a stream reset, got %v", err)
	}
	resp, err = c.Do(h2Req(t, h, "GET", "svc.example", "/wait", nil))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // RST_STREAM(CANCEL) to the proxy
	select {
	case <-backendSawCancel:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never saw the client's reset")
	}
}

// rawH2CBackend is an HTTP/2 backend made of frames: it calls onHeaders
// for each request stream and counts them.
type rawH2CBackend struct {
	addr    string
	streams atomic.Int32
	l       net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func newRawH2CBackend(t testing.TB, onHeaders func(fr *http2.Framer, id uint32)) *rawH2CBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawH2CBackend{addr: l.Addr().String(), l: l}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() { defer b.wg.Done(); b.serve(c, onHeaders) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *rawH2CBackend) serve(c net.Conn, onHeaders func(fr *http2.Framer, id uint32)) {
	defer c.Close()
	pre := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, pre); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	_ = fr.WriteSettings()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.HeadersFrame:
			b.streams.Add(1)
			onHeaders(fr, f.StreamID)
		}
	}
}

func okBackend(t testing.TB) *h2cBackend {
	return newH2CBackend(t, 0, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
}

// TestH2CRefusedStreamRetry: a stream the backend refuses is retried on
// another endpoint, and never twice on the refusing one.
func TestH2CRefusedStreamRetry(t *testing.T) {
	refuser := newRawH2CBackend(t, func(fr *http2.Framer, id uint32) {
		_ = fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
	})
	good := okBackend(t)
	h := newHarness(t)
	h.routeH2C(refuser.addr, good.addr)
	c := h.h2Client()
	for i := 0; i < 6; i++ {
		before := refuser.streams.Load()
		resp, body := h2Do(t, c, h2Req(t, h, "POST", "svc.example", "/x", strings.NewReader("")))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if d := refuser.streams.Load() - before; d > 1 {
			t.Fatalf("request %d reached the refusing endpoint %d times", i, d)
		}
	}
	if refuser.streams.Load() == 0 {
		t.Fatal("the refusing endpoint was never tried")
	}
}

// TestH2CGoAwayRetry: a stream above the last stream id of the backend's
// GOAWAY was not processed and is retried on another endpoint; the
// connection that said GOAWAY is not reused.
func TestH2CGoAwayRetry(t *testing.T) {
	leaver := newRawH2CBackend(t, func(fr *http2.Framer, _ uint32) {
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	good := okBackend(t)
	h := newHarness(t)
	h.routeH2C(leaver.addr, good.addr)
	c := h.h2Client()
	for i := 0; i < 4; i++ {
		resp, body := h2Do(t, c, h2Req(t, h, "GET", "svc.example", "/x", nil))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if leaver.streams.Load() == 0 {
		t.Fatal("the GOAWAY endpoint was never tried")
	}
	if err := errors.New("http2: Transport received Server's graceful shutdown GOAWAY"); !h2cUnprocessed(err) {
		t.Fatal("sentinel text")
	}
}

// TestH2CPoolBounds: at most h2cMaxConnsPerEndpoint connections to an
// endpoint, each with at most the backend's MAX_CONCURRENT_STREAMS
// exchanges; the rest wait, and all complete. The connections close when
// the endpoint leaves the table.
func TestH2CPoolBounds(t *testing.T) {
	const maxStreams, requests = 2, 12
	var active, peak atomic.Int32
	release := make(chan struct{})
	be := newH2CBackend(t, maxStreams, func(w http.ResponseWriter, _ *http.Request) {
		n := active.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		active.Add(-1)
		_, _ = w.Write([]byte("ok"))
	})
	h := newHarness(t, func(o *Options) { o.MaxAttempts = 8 })
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the harness's
	h.routeH2C(be.addr)
	c := h.h2Client()
	errs := make(chan error, requests)
	for i := 0; i < requests; i++ {
		go func() {
			resp, err := c.Do(h2Req(t, h, "GET", "svc.example", "/x", nil))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = errors.New(resp.Status)
				}
			}
			errs <- err
		}()
	}
	limit := int32(maxStreams * h2cMaxConnsPerEndpoint)
	waitFor(t, "the backend to be full", 10*time.Second, func() bool { return active.Load() == limit })
	once.Do(func() { close(release) })
	for i := 0; i < requests; i++ {
		if err := <-errs; err != nil {
			t.Errorf("request: %v", err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Errorf("peak concurrency %d > %d", p, limit)
	}
	if n := be.conns.Load(); n > h2cMaxConnsPerEndpoint {
		t.Errorf("%d connections to one endpoint", n)
	}
	if n := h.srv.h2c.open.Load(); n == 0 || n > h2cMaxConnsPerEndpoint {
		t.Errorf("open h2c connections %d", n)
	}
	h.routeH2C() // the endpoint leaves: BackendGone
	waitFor(t, "h2c connections to close", 5*time.Second, func() bool { return h.srv.h2c.open.Load() == 0 })
}

// TestH2CIdleReap: idle connections close after BackendIdleTimeout.
func TestH2CIdleReap(t *testing.T) {
	be := okBackend(t)
	h := newHarness(t, func(o *Options) { o.BackendIdleTimeout = 50 * time.Millisecond })
	h.routeH2C(be.addr)
	resp, body := h2Do(t, h.h2Client(), h2Req(t, h, "GET", "svc.example", "/x", nil))
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	waitFor(t, "the idle connection to be reaped", 5*time.Second, func() bool { return h.srv.h2c.open.Load() == 0 })
}

// TestH2H1ChunkedTrailers: trailers of a chunked HTTP/1.1 backend reach
// an HTTP/2 client as a trailing HEADERS frame.
func TestH2H1ChunkedTrailers(t *testing.T) {
	be := newBackend(t, "b")
	be.handler = func(w io.Writer, _ *http.Request, _ []byte) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
			"5\r\nhello\r\n0\r\nX-Sum: 5\r\nGrpc-Status: 0\r\n\r\n")
		return true
	}
	h := newHarness(t)
	h.route(to(be.addr))
	resp, body := h2Do(t, h.h2Client(), h2Req(t, h, "GET", "svc.example", "/", nil))
	if resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Sum") != "5" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}
