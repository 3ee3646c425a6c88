package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2BenchClient keeps depth streams in flight on one h2c connection with
// pre-encoded request headers, and allocates nothing per request, so that
// allocs/op is the proxy's.
type h2BenchClient struct {
	nc     net.Conn
	bw     *bufio.Writer
	br     *bufio.Reader
	fr     *http2.Framer
	block  []byte
	next   uint32
	credit uint32
}

func newH2BenchClient(tb testing.TB, addr string) *h2BenchClient {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &h2BenchClient{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), br: bufio.NewReaderSize(nc, 64<<10), next: 1}
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.SetMaxDynamicTableSizeLimit(0) // the block can be sent again and again
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "bench.example"},
		{":path", "/bench"}, {"user-agent", "bench/1"}, {"accept", "*/*"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	c.block = hb.Bytes()
	_, _ = io.WriteString(c.bw, h2Preface)
	_ = c.fr.WriteSettings()
	_ = c.fr.WriteWindowUpdate(0, 1<<30)
	if err := c.bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c *h2BenchClient) send() error {
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: c.next, BlockFragment: c.block, EndStream: true, EndHeaders: true})
	c.next += 2
	return err
}

// run completes n requests with depth in flight.
func (c *h2BenchClient) run(tb testing.TB, n, depth int) {
	sent, done := 0, 0
	for ; sent < min(depth, n); sent++ {
		_ = c.send()
	}
	if err := c.bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	for done < n {
		f, err := c.fr.ReadFrame()
		if err != nil {
			tb.Fatal(err)
		}
		ended := false
		switch f := f.(type) {
		case *http2.DataFrame:
			ended = f.StreamEnded()
			if c.credit += f.Length; c.credit > 1<<20 {
				_ = c.fr.WriteWindowUpdate(0, c.credit)
				c.credit = 0
			}
		case *http2.HeadersFrame:
			ended = f.StreamEnded()
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			tb.Fatalf("unexpected %v", f)
		}
		if ended {
			done++
			if sent < n {
				_ = c.send()
				sent++
			}
		}
		if c.br.Buffered() == 0 {
			if err := c.bw.Flush(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	_ = c.bw.Flush()
}

// BenchmarkH2Forward measures the HTTP/2 front over loopback: one h2c
// connection with depth streams in flight, each forwarded to an HTTP/1.1
// backend over the keep-alive pools (43-byte responses, as FACTS.md).
func BenchmarkH2Forward(b *testing.B) {
	for _, depth := range []int{1, 50} {
		b.Run("streams="+strconv.Itoa(depth), func(b *testing.B) {
			h := newHarnessWith(b, io.Discard)
			be := startBackend(b, "bench", benchBackend)
			h.route(rule{host: "bench.example", path: "/", service: "bench", addrs: []string{be.addr}})
			c := newH2BenchClient(b, h.addr)
			defer c.nc.Close()
			c.run(b, depth, depth) // warm: backend connections pooled
			b.ReportAllocs()
			b.ResetTimer()
			c.run(b, b.N, depth)
			b.StopTimer()
		})
	}
}
