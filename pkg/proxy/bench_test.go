package proxy

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// benchBody is the 43-byte body of FACTS.md's measurements.
var benchBody = bytes.Repeat([]byte("x"), 43)

// benchBackend answers every request (no body) with a fixed keep-alive
// response, nginx-like, without allocating per request.
func benchBackend(b *backend, c net.Conn) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 43\r\nConnection: keep-alive\r\n\r\n" + string(benchBody))
	buf := make([]byte, 8192)
	n := 0
	for {
		k, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += k
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
	}
}

// benchClient sends requests and reads responses on one connection
// without allocating per request.
type benchClient struct {
	nc  net.Conn
	req []byte
	buf []byte
}

func newBenchClient(tb testing.TB, addr string) *benchClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &benchClient{nc: nc, buf: make([]byte, 8192),
		req: []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench/1\r\nAccept: */*\r\n\r\n")}
}

// do sends one request and reads its response; the response must have a
// Content-Length of 43.
func (c *benchClient) do(tb testing.TB) {
	if _, err := c.nc.Write(c.req); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for {
		k, err := c.nc.Read(c.buf[n:])
		if err != nil {
			tb.Fatal(err)
		}
		n += k
		i := bytes.Index(c.buf[:n], []byte("\r\n\r\n"))
		if i < 0 {
			continue
		}
		if n == i+4+len(benchBody) {
			return
		}
		if n > i+4+len(benchBody) {
			tb.Fatalf("unexpected bytes: %q", c.buf[:n])
		}
	}
}

// BenchmarkForward measures the whole forward path over loopback sockets:
// a client connection, the proxy (parse, route, rewrite, pooled backend
// connection, response rewrite, metrics, access log) and a backend. Run
// with -cpuprofile to see where the proxy spends its time.
func BenchmarkForward(b *testing.B) {
	for _, conns := range []int{1, 16} {
		b.Run("conns="+strconv.Itoa(conns), func(b *testing.B) {
			h := newHarnessWith(b, io.Discard)
			be := startBackend(b, "bench", benchBackend)
			h.route(rule{host: "bench.example", path: "/", service: "bench", addrs: []string{be.addr}})
			clients := make([]*benchClient, conns)
			for i := range clients {
				clients[i] = newBenchClient(b, h.addr)
				clients[i].do(b) // warm: backend connection pooled
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / conns
			for i, c := range clients {
				n := per
				if i == 0 {
					n += b.N - per*conns
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < n; j++ {
						c.do(b)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			for _, c := range clients {
				c.nc.Close()
			}
		})
	}
}

// bigBackend answers every request with a 1 MiB body.
func bigBackend(b *backend, c net.Conn) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	buf := make([]byte, 8192)
	n := 0
	for {
		k, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += k
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(head); err != nil {
				return
			}
			if _, err := c.Write(body); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
	}
}

// BenchmarkForwardLarge measures 1 MiB responses through the proxy
// (spliced in the kernel when both ends are TCP); b.SetBytes makes the
// result a throughput.
func BenchmarkForwardLarge(b *testing.B) {
	h := newHarnessWith(b, io.Discard)
	be := startBackend(b, "big", bigBackend)
	h.route(rule{host: "bench.example", path: "/", service: "bench", addrs: []string{be.addr}})
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	req := []byte("GET /big HTTP/1.1\r\nHost: bench.example\r\n\r\n")
	buf := make([]byte, 64<<10)
	const size = 1 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		n, head := 0, -1
		for head < 0 {
			k, err := nc.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += k
			head = bytes.Index(buf[:n], []byte("\r\n\r\n"))
		}
		for left := size - (n - head - 4); left > 0; {
			k, err := nc.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			left -= k
		}
	}
}
