package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// parseAll runs the head scanner and the request parser over raw, as the
// connection does, with generous limits.
func parseAll(raw []byte) (*request, parseError, bool) {
	buf := make([]byte, headRoom+len(raw))
	copy(buf[headRoom:], raw)
	var h headScan
	h.reset(headRoom)
	if h.scan(buf, len(buf), 101) != scanDone {
		return nil, parseError{}, false
	}
	r := &request{fields: make([]field, 0, 101)}
	return r, parseRequest(buf, &h, r), true
}

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /p?q HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
	"GET http://a/b HTTP/1.1\r\nHost: c\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"GET /a/%2e%2e/b HTTP/1.1\r\nHost: a\r\n\r\n",
}

// FuzzParseRequest checks the request parser against net/http's: whatever
// the proxy accepts, Go's server parser must accept too and must agree on
// the method, target, Host and body framing. (The proxy is stricter, so
// the converse does not hold.)
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, pe, complete := parseAll(raw)
		if !complete || pe.status != 0 {
			return
		}
		buf := make([]byte, headRoom+len(raw))
		copy(buf[headRoom:], raw)
		if r.minor == 0 || r.form != formOrigin {
			return // net/http normalises these differently
		}
		// Leading empty lines are skipped (RFC 9112 §2.2) and not forwarded.
		gr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf[r.start:])))
		if err != nil {
			t.Fatalf("proxy accepted what net/http rejects (%v):\n%q", err, raw)
		}
		if gr.Method != string(r.method.in(buf)) || gr.RequestURI != string(r.target.in(buf)) {
			t.Fatalf("method/target %q %q vs net/http %q %q", r.method.in(buf), r.target.in(buf), gr.Method, gr.RequestURI)
		}
		if gr.Host != string(r.authority.in(buf)) {
			t.Fatalf("host %q vs net/http %q", r.authority.in(buf), gr.Host)
		}
		chunked := len(gr.TransferEncoding) > 0 && gr.TransferEncoding[0] == "chunked"
		if chunked != r.chunked {
			t.Fatalf("chunked %v vs net/http %v", r.chunked, chunked)
		}
		if !r.chunked && r.contentLength >= 0 && gr.ContentLength != r.contentLength {
			t.Fatalf("content-length %d vs net/http %d", r.contentLength, gr.ContentLength)
		}
		for _, f := range r.fields {
			if bytes.ContainsAny(f.value.in(buf), "\r\n\x00") || !validToken(f.name.in(buf)) {
				t.Fatalf("accepted field %q", f.line.in(buf))
			}
		}
	})
}

// FuzzFieldLine checks header-field validation: an accepted line has a
// token name, no whitespace before the colon and no CR, LF or NUL in its
// value, and the value has no surrounding whitespace.
func FuzzFieldLine(f *testing.F) {
	for _, s := range []string{"Host: a", "X-A:\tb c ", "Bad Name: x", "X: a\rb", "X:", ": x", "X:\x00", "X: caf\xc3\xa9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.ContainsAny(line, "\n") {
			return // lines come split on LF
		}
		buf := append(append([]byte{}, line...), '\r', '\n')
		fl, ok := parseField(buf, 0, len(buf))
		if !ok {
			return
		}
		name, value := fl.name.in(buf), fl.value.in(buf)
		if !validToken(name) || bytes.IndexByte(line, ':') != len(name) {
			t.Fatalf("accepted name %q in %q", name, line)
		}
		if bytes.ContainsAny(value, "\r\n\x00\x7f") || (len(value) > 0 && (value[0] == ' ' || value[len(value)-1] == '\t')) {
			t.Fatalf("accepted value %q", value)
		}
		for _, c := range value {
			if c < 0x20 && c != '\t' {
				t.Fatalf("control byte in accepted value %q", value)
			}
		}
	})
}

// FuzzChunked checks the chunked validator against net/http's chunked
// reader: whatever it accepts decodes to the same data, and feeding the
// body in pieces gives the same result as feeding it whole.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n", "0\r\n\r\n", "zz\r\n", "5\nhello\n0\n\n", "1\r\na\r\n0\r\n\r\nextra"} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(checkChunked)
}

func checkChunked(t *testing.T, body []byte, step uint8) {
	if len(body) > 4096 {
		return // bounded work per input; framing bugs show on short inputs
	}
	{
		var whole chunker
		whole.reset(0, 100, 8192)
		n, _, err := whole.feed(append([]byte{}, body...), false)
		var pieces chunker
		pieces.reset(0, 100, 8192)
		pn, perr := 0, error(nil)
		k := int(step%16) + 1
		for i := 0; i < len(body) && perr == nil && !pieces.done(); i += k {
			var m int
			m, _, perr = pieces.feed(append([]byte{}, body[i:min(i+k, len(body))]...), false)
			pn += m
		}
		if (err == nil) != (perr == nil) || whole.done() != pieces.done() || (err == nil && n != pn) {
			t.Fatalf("whole: n=%d err=%v done=%v; pieces of %d: n=%d err=%v done=%v", n, err, whole.done(), k, pn, perr, pieces.done())
		}
		if err != nil || !whole.done() {
			return
		}
		want, gerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body[:n])))
		if gerr != nil {
			t.Fatalf("proxy accepted a chunked body net/http rejects (%v): %q", gerr, body[:n])
		}
		var dec chunker
		dec.reset(0, 100, 8192)
		cp := append([]byte{}, body[:n]...)
		_, out, derr := dec.feed(cp, true)
		if derr != nil || string(cp[:out]) != string(want) {
			t.Fatalf("decoded %q (%v), net/http %q", cp[:out], derr, want)
		}
	}
}

// FuzzRewriteHead checks the in-place head editor against a naive
// rebuild: same bytes, ending at the same place.
func FuzzRewriteHead(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", uint16(0b0101), "X-Add: 1\r\n")
	f.Add("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", uint16(0b1), "")
	f.Fuzz(func(t *testing.T, head string, mask uint16, add string) {
		if !strings.HasSuffix(head, "\r\n\r\n") || len(add) > 256 {
			return
		}
		lines := strings.SplitAfter(head[:len(head)-2], "\r\n")
		lines = lines[:len(lines)-1]
		const room = 300
		buf := make([]byte, room+len(head)+5)
		copy(buf[room:], head)
		copy(buf[room+len(head):], "BODY!")
		var cuts []span
		var want strings.Builder
		off := room
		for i, l := range lines {
			if i > 0 && i < 17 && mask&(1<<(i-1)) != 0 {
				cuts = append(cuts, mkspan(off, off+len(l)))
			} else {
				want.WriteString(l)
			}
			off += len(l)
		}
		want.WriteString(add + "\r\nBODY!")
		start := rewriteHead(buf, room, room+len(head), cuts, []byte(add), make([]span, 0, len(cuts)+1))
		if got := string(buf[start:]); got != want.String() {
			t.Fatalf("rewrite gave %q, want %q", got, want.String())
		}
	})
}
