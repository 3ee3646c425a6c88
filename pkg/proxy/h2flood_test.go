package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// holdBackend answers each request only once release is closed, and
// records how many requests it held at once.
type holdBackend struct {
	*backend
	release  chan struct{}
	once     sync.Once
	cur, max atomic.Int64
	total    atomic.Int64
}

func newHoldBackend(t *testing.T) *holdBackend {
	hb := &holdBackend{release: make(chan struct{})}
	hb.backend = newRawBackend(t, func(b *backend, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			hb.total.Add(1)
			n := hb.cur.Add(1)
			for m := hb.max.Load(); n > m && !hb.max.CompareAndSwap(m, n); m = hb.max.Load() {
			}
			<-hb.release
			hb.cur.Add(-1)
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	// Registered after the backend's own cleanup, so it runs first.
	t.Cleanup(hb.open)
	return hb
}

// open lets every held and future request through.
func (hb *holdBackend) open() { hb.once.Do(func() { close(hb.release) }) }

// checkLeaks registers, before anything else of the test, a check that
// every goroutine the test started is gone once the proxy and backends
// are closed.
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// floodOutcome sends frames produced by send, count times at most,
// without reading, then reads until GOAWAY or the end of the connection.
func floodOutcome(t *testing.T, c *rawH2, count int, send func(i int) error) (*http2.GoAwayFrame, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	sent := 0
	for ; sent < count && time.Now().Before(deadline); sent++ {
		if err := send(sent); err != nil {
			break // the proxy closed: expected once the budget is spent
		}
	}
	g, _ := c.goAway()
	return g, sent
}

// TestH2FloodsEndWithGoAway pins the flood budgets (see h2conn.go): each
// flood, sent by a client that does not read, ends with
// GOAWAY(ENHANCE_YOUR_CALM) within its budget.
func TestH2FloodsEndWithGoAway(t *testing.T) {
	checkLeaks(t)
	h := newHarness(t)
	hb := newHoldBackend(t)
	h.route(to(hb.addr))
	post := []string{":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/"}
	tests := []struct {
		name   string
		budget int // frames after which the GOAWAY must have come
		code   http2.ErrCode
		send   func(c *rawH2, i int) error
	}{
		{"PING", h2ControlBudget + 1, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			return c.fr.WritePing(false, [8]byte{byte(i)})
		}},
		{"SETTINGS", h2ControlBudget + 1, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			return c.fr.WriteSettings()
		}},
		{"WINDOW_UPDATE", h2ControlBudget + 1, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			return c.fr.WriteWindowUpdate(0, 1)
		}},
		{"PRIORITY", h2ControlBudget + 1, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			return c.fr.WritePriority(uint32(2*i+1), http2.PriorityParam{StreamDep: 0, Weight: 1})
		}},
		{"empty DATA", h2ControlBudget + 2, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			if i == 0 {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(post...), EndHeaders: true})
			}
			return c.fr.WriteData(1, false, nil)
		}},
		{"Rapid Reset", 2 * (h2ResetBudget + 1), http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			id := uint32(i/2*2 + 1)
			if i%2 == 0 {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(getFields("/")...), EndStream: true, EndHeaders: true})
			}
			return c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}},
		{"MadeYouReset: WINDOW_UPDATE overflow", 2 * (h2ResetBudget + 1), http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			id := uint32(i/2*2 + 1)
			if i%2 == 0 {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(getFields("/")...), EndStream: true, EndHeaders: true})
			}
			return c.fr.WriteWindowUpdate(id, h2MaxWindow)
		}},
		{"MadeYouReset: DATA on a half-closed stream", 2 * (h2ResetBudget + 1), http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			id := uint32(i/2*2 + 1)
			if i%2 == 0 {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(getFields("/")...), EndStream: true, EndHeaders: true})
			}
			return c.fr.WriteData(id, false, []byte("x"))
		}},
		{"CONTINUATION", h2MaxHeaderFrames + 1, http2.ErrCodeEnhanceYourCalm, func(c *rawH2, i int) error {
			if i == 0 {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(getFields("/")...)})
			}
			return c.fr.WriteContinuation(1, false, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dialH2()
			g, sent := floodOutcome(t, c, 10*tc.budget, func(i int) error { return tc.send(c, i) })
			if g == nil || g.ErrCode != tc.code {
				t.Fatalf("after %d frames: GOAWAY %v, want %v", sent, g, tc.code)
			}
			if sent < tc.budget-1 {
				t.Fatalf("GOAWAY after only %d frames; budget %d", sent, tc.budget)
			}
			_ = c.nc.Close()
		})
	}
	hb.open()
	h.idle()
}

// TestH2HeaderBombsAreAnswered431 pins HPACK amplification (one large
// table entry referenced many times) and many tiny fields: the request is
// answered 431 without being forwarded, and the connection goes on.
func TestH2HeaderBombsAreAnswered431(t *testing.T) {
	checkLeaks(t)
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dialH2()
	big := strings.Repeat("v", 4000)
	tests := []struct {
		name  string
		block func() []byte
	}{
		{"table amplification", func() []byte {
			c.hbuf.Reset()
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/"}} {
				_ = c.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			for i := 0; i < 1000; i++ { // indexed after the first: 1 byte each
				_ = c.enc.WriteField(hpack.HeaderField{Name: "x-big", Value: big})
			}
			return append([]byte(nil), c.hbuf.Bytes()...)
		}},
		{"many tiny fields", func() []byte {
			kv := getFields("/")
			for i := 0; i < 2000; i++ {
				kv = append(kv, "x", "")
			}
			return c.block(kv...)
		}},
	}
	id := uint32(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blk := tc.block()
			first, rest := blk, []byte(nil)
			if len(blk) > 16384 {
				first, rest = blk[:16384], blk[16384:]
			}
			if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: true, EndHeaders: rest == nil}); err != nil {
				t.Fatal(err)
			}
			for len(rest) > 0 {
				n := min(len(rest), 16384)
				if err := c.fr.WriteContinuation(id, n == len(rest), rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if r := c.until(id); r.status != "431" {
				t.Fatalf("got %+v, want 431", r)
			}
			id += 2
		})
	}
	c.headers(id, true, getFields("/")...)
	if r := c.until(id); r.status != "200" {
		t.Fatalf("after the bombs: %+v", r)
	}
	if n := len(b.got()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

// TestH2BackendConcurrencyIsBoundedByMaxConcurrentStreams opens more
// streams than SETTINGS_MAX_CONCURRENT_STREAMS on one connection: the
// extra ones are refused (REFUSED_STREAM), and the backend never holds
// more than the limit at once.
func TestH2BackendConcurrencyIsBoundedByMaxConcurrentStreams(t *testing.T) {
	checkLeaks(t)
	const limit = 8
	h := newHarness(t, func(o *Options) { o.H2MaxConcurrentStreams = limit })
	hb := newHoldBackend(t)
	h.route(to(hb.addr))
	c := h.dialH2()
	if got := c.settings[http2.SettingMaxConcurrentStreams]; got != limit {
		t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", got, limit)
	}
	for i := 0; i < 3*limit; i++ {
		c.headers(uint32(2*i+1), true, getFields("/")...)
	}
	refused := 0
	for refused < 2*limit {
		f := c.read()
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.ErrCode == http2.ErrCodeRefusedStream {
			refused++
		}
	}
	waitFor(t, "the backend to hold the allowed streams", 5*time.Second, func() bool { return hb.cur.Load() == limit })
	hb.open()
	ok := 0
	for ok < limit {
		if d, isData := c.read().(*http2.DataFrame); isData && d.StreamEnded() {
			ok++
		}
	}
	if m := hb.max.Load(); m > limit {
		t.Fatalf("backend held %d requests at once, limit %d", m, limit)
	}
	h.idle()
}

// TestH2ShutdownSendsTwoGoAwaysAndFinishesStreams pins RFC 9113 §6.8's
// graceful close: GOAWAY with the largest stream id, a PING round trip,
// GOAWAY with the last stream processed, and the stream in flight ends
// normally before the connection closes.
func TestH2ShutdownSendsTwoGoAwaysAndFinishesStreams(t *testing.T) {
	checkLeaks(t)
	h := newHarness(t)
	hb := newHoldBackend(t)
	h.route(to(hb.addr))
	c := h.dialH2()
	c.headers(1, true, getFields("/slow")...)
	waitFor(t, "the backend to hold the request", 5*time.Second, func() bool { return hb.cur.Load() == 1 })
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(t.Context()) }()
	var goAways []uint32
	for len(goAways) < 2 {
		switch f := c.read().(type) {
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY code %v", f.ErrCode)
			}
			goAways = append(goAways, f.LastStreamID)
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := c.fr.WritePing(true, f.Data); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if goAways[0] != h2MaxWindow || goAways[1] != 1 {
		t.Fatalf("GOAWAY last stream ids %v, want [2147483647 1]", goAways)
	}
	hb.open()
	if r := c.until(1); r.status != "200" || !r.ended {
		t.Fatalf("in-flight stream: %+v", r)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := c.fr.ReadFrame(); err == nil {
		t.Fatal("connection still open after Shutdown")
	}
}
