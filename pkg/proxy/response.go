package proxy

import "bytes"

// response is a parsed backend response head: offsets into the stream's
// Back buffer and the facts that decide framing and forwarding.
type response struct {
	start, end    int // the head, CRLF CRLF included
	minor         byte
	status        int
	fields        []field
	contentLength int64 // -1 when absent
	chunked       bool  // final transfer coding is chunked
	hasTE         bool
	connOptions
	hasDate   bool
	hasServer bool
}

// parseResponse parses the head found by h in buf. It reports false for a
// head the proxy must not forward (answered 502).
func parseResponse(buf []byte, h *headScan, r *response) bool {
	*r = response{start: h.start, end: h.pos, contentLength: -1, fields: r.fields[:0]}
	if !r.parseStatusLine(buf[h.start : h.firstEnd-2]) {
		return false
	}
	for off := h.firstEnd; off < h.pos-2; {
		eol := off + bytes.IndexByte(buf[off:h.pos], '\n') + 1
		if len(r.fields) == cap(r.fields) {
			return false
		}
		f, ok := parseField(buf, off, eol)
		if !ok {
			return false
		}
		r.fields = append(r.fields, f)
		if !r.noteField(buf, &r.fields[len(r.fields)-1]) {
			return false
		}
		off = eol
	}
	// Both Content-Length and Transfer-Encoding: never forwarded (RFC 9112
	// §6.3 item 3 allows treating it as an error); TE in HTTP/1.0 is faulty.
	return !(r.hasTE && (r.contentLength >= 0 || r.minor == 0))
}

// parseStatusLine parses HTTP-version SP 3DIGIT [SP reason-phrase]. The
// reason may be empty and its SP may be missing, as some servers send.
func (r *response) parseStatusLine(line []byte) bool {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return false
	}
	r.minor = line[7] - '0'
	d := line[9:12]
	if !isDigit(d[0]) || !isDigit(d[1]) || !isDigit(d[2]) || d[0] == '0' {
		return false
	}
	r.status = int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	if len(line) > 12 && (line[12] != ' ' || !validValue(line[13:])) {
		return false
	}
	return true
}

// noteField records framing and hop-by-hop facts about f and marks it for
// removal when it must not reach the client.
func (r *response) noteField(buf []byte, f *field) bool {
	v := f.value.in(buf)
	switch f.kind {
	case kindContentLength:
		n, ok := parseDecimal(v)
		if !ok || r.contentLength >= 0 {
			return false
		}
		r.contentLength = n
	case kindTransferEncoding:
		for rest := v; ; {
			item, next, ok := nextListItem(rest)
			if !ok {
				return false
			}
			r.chunked = eqFoldAny(item, "chunked")
			if next == nil {
				break
			}
			rest = next
		}
		r.hasTE = true
	case kindConnection:
		f.drop = true
		return r.noteConnection(buf, f.value)
	case kindKeepAlive, kindProxyConnection, kindTE, kindUpgrade, kindHTTP2Settings:
		f.drop = true // Upgrade is restored for 101, see rewriteResponse
	case kindDate:
		r.hasDate = true
	case kindServer:
		r.hasServer = true
	}
	return true
}

// noteConnection records the options of a Connection field; named
// options beyond what connOptions holds are ignored (a backend's answer is
// not refused for them).
func (r *response) noteConnection(buf []byte, val span) bool {
	ok, _ := r.connOptions.note(buf, val)
	return ok
}

// bodyless reports whether the response has no body whatever its fields
// say (RFC 9112 §6.3 items 1 and 2).
func (r *response) bodyless(head bool) bool {
	return head || r.status < 200 || r.status == 204 || r.status == 304
}

// reusable reports whether the backend keeps the connection open after
// this response.
func (r *response) reusable() bool {
	if r.connClose {
		return false
	}
	return r.minor == 1 || r.connKeepAlive
}
