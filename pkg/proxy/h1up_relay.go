package proxy

import (
	"io"
	"net"
	"net/http"
	"strconv"
)

// h1RespMode is how a response from an h2c backend is framed for an
// HTTP/1.x client.
type h1RespMode uint8

const (
	h1RespNone    h1RespMode = iota // no body (HEAD, 1xx, 204, 304)
	h1RespLength                    // the backend's content-length
	h1RespChunked                   // HTTP/1.1 client, length unknown
	h1RespClose                     // HTTP/1.0 client, length unknown
)

// relayFromH2C relays an h2c backend's response to the HTTP/1.x client:
// content-length kept when the backend sent one, else chunked (trailers
// only when the client sent TE: trailers) for HTTP/1.1 clients, or
// delimited by closing the connection for HTTP/1.0 ones.
func (c *conn) relayFromH2C(resp *http.Response) outcome {
	st, ex, u := c.st, c.ex, c.ex.up
	st.Metrics.BackendEnd = c.tick()
	st.Ctx.Status = resp.StatusCode
	r := &ex.req
	s := resp.StatusCode
	mode := h1RespChunked
	switch {
	case r.isHead || s < 200 || s == 204 || s == 304:
		mode = h1RespNone
	case resp.ContentLength >= 0:
		mode = h1RespLength
	case r.minor == 0:
		mode = h1RespClose
		c.closeConn = true
	}
	head := c.appendH2CHead(st.Back[:0], resp, mode)
	setWrite(c.nc, &c.wdl, c.tick(), c.bodyIdle())
	if _, err := c.nc.Write(head); err != nil {
		return c.h2cRelayFailed(causeClientAborted)
	}
	if mode == h1RespNone {
		return outDone
	}
	buf := st.Back
	var hdr [20]byte
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			setWrite(c.nc, &c.wdl, c.tick(), c.bodyIdle())
			var werr error
			if mode == h1RespChunked {
				h := strconv.AppendInt(hdr[:0], int64(n), 16)
				h = append(h, '\r', '\n')
				bufs := net.Buffers{h, buf[:n], crlf}
				_, werr = bufs.WriteTo(c.nc)
			} else {
				_, werr = c.nc.Write(buf[:n])
			}
			if werr != nil {
				return c.h2cRelayFailed(causeClientAborted)
			}
			st.Metrics.BytesOut += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return c.h2cRelayFailed(causeBackendError)
		}
	}
	if mode == h1RespChunked {
		end := append(st.Back[:0], "0\r\n"...)
		if u.teTrailers {
			end = appendHeaderLines(end, resp.Trailer, false)
		}
		end = append(end, crlf...)
		if _, err := c.nc.Write(end); err != nil {
			return c.h2cRelayFailed(causeClientAborted)
		}
	}
	return outDone
}

var crlf = []byte("\r\n")

// h2cRelayFailed ends a response that broke after its head: the
// connection closes, so the client sees it incomplete.
func (c *conn) h2cRelayFailed(cause string) outcome {
	c.closeConn = true
	c.st.Ctx.Cause = cause
	return outDone
}

// appendH2CHead appends the HTTP/1.1 response head for resp: the status
// line, the backend's fields without connection-specific and framing ones,
// Date and Server when missing, the affinity cookie, the framing for mode,
// and Connection.
func (c *conn) appendH2CHead(b []byte, resp *http.Response, mode h1RespMode) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.StatusCode), 10)
	b = append(b, ' ')
	b = append(b, statusText(resp.StatusCode)...)
	b = append(b, crlf...)
	b = appendHeaderLines(b, resp.Header, mode == h1RespChunked && c.ex.up.teTrailers)
	if _, ok := resp.Header["Date"]; !ok {
		b = appendLine(b, "Date", dates.get(c.tick()))
	}
	if _, ok := resp.Header["Server"]; !ok {
		b = appendLineS(b, "Server", "kakehi")
	}
	b = c.appendAffinity(b)
	switch mode {
	case h1RespLength:
		var n [20]byte
		b = appendLine(b, "Content-Length", strconv.AppendInt(n[:0], resp.ContentLength, 10))
	case h1RespChunked:
		b = appendLineS(b, "Transfer-Encoding", "chunked")
	}
	switch {
	case c.closeConn || c.srv.shutting.Load():
		c.closeConn = true
		b = appendLineS(b, "Connection", "close")
	case c.ex.req.minor == 0:
		b = appendLineS(b, "Connection", "keep-alive")
	}
	return append(b, crlf...)
}

// appendHeaderLines appends h as HTTP/1.1 field lines, without the
// connection-specific and framing fields; Trailer is kept when trailer is
// set (the trailers will be sent).
func appendHeaderLines(b []byte, h http.Header, trailer bool) []byte {
	for k, vv := range h {
		switch classify(sbytes(k)) {
		case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding,
			kindUpgrade, kindContentLength:
			continue
		}
		if !trailer && k == "Trailer" {
			continue
		}
		for _, v := range vv {
			b = appendLineS(b, k, v)
		}
	}
	return b
}
