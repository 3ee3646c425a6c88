package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client returns an HTTP/2 client that speaks h2c with prior knowledge
// to the harness's listener.
func (h *harness) h2Client() *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// h2Get sends a GET over HTTP/2 and returns the response with its body.
func h2Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func h2Req(t testing.TB, h *harness, method, host, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+h.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

// rawH2 is a raw-frame HTTP/2 client: it writes exactly the frames a test
// asks for, with its own HPACK encoder, over a real loopback socket.
type rawH2 struct {
	t    testing.TB
	nc   net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	// settings the server sent
	settings map[http2.SettingID]uint32
}

// dialH2 connects, sends the preface and an empty SETTINGS, and reads the
// server's SETTINGS.
func (h *harness) dialH2() *rawH2 {
	h.t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawH2{t: h.t, nc: nc, settings: map[http2.SettingID]uint32{}}
	c.fr = http2.NewFramer(nc, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(nc, h2Preface); err != nil {
		h.t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		h.t.Fatal(err)
	}
	f := c.read()
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		h.t.Fatalf("first frame %v, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { c.settings[s.ID] = s.Val; return nil })
	if err := c.fr.WriteSettingsAck(); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// read reads the next frame, failing the test on error.
func (c *rawH2) read() http2.Frame {
	c.t.Helper()
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// block encodes header fields given as name, value pairs.
func (c *rawH2) block(kv ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), c.hbuf.Bytes()...)
}

// headers sends a complete header block in one HEADERS frame.
func (c *rawH2) headers(id uint32, end bool, kv ...string) {
	c.t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(kv...),
		EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// get is the header list of a GET for path on host a.
func getFields(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", path}
}

// streamResult is what the client saw on one stream.
type streamResult struct {
	status  string
	body    []byte
	rst     http2.ErrCode
	gotRST  bool
	ended   bool
	goAway  *http2.GoAwayFrame
	headers []hpack.HeaderField
}

// until reads frames until stream id ends (END_STREAM or RST_STREAM) or
// a GOAWAY or EOF arrives, acknowledging nothing.
func (c *rawH2) until(id uint32) streamResult {
	c.t.Helper()
	var r streamResult
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || isConnReset(err) {
				return r
			}
			c.t.Fatalf("read frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			r.goAway = f
			return r
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			r.headers = append(r.headers, f.Fields...)
			if s := f.PseudoValue("status"); s != "" && r.status == "" || s != "" && s[0] != '1' {
				r.status = s
			}
			if f.StreamEnded() {
				r.ended = true
				return r
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			r.body = append(r.body, f.Data()...)
			if f.StreamEnded() {
				r.ended = true
				return r
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				r.gotRST, r.rst = true, f.ErrCode
				return r
			}
		}
	}
}

// goAway reads until a GOAWAY (returned) or the end of the connection
// (nil), counting the other frames.
func (c *rawH2) goAway() (*http2.GoAwayFrame, int) {
	c.t.Helper()
	n := 0
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, n
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g, n
		}
		n++
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}
