package proxy

import "bytes"

// span is a byte range [s, e) of a stream buffer.
type span struct{ s, e int32 }

func mkspan(s, e int) span { return span{int32(s), int32(e)} }

func (p span) in(buf []byte) []byte { return buf[p.s:p.e] }

func (p span) len() int { return int(p.e - p.s) }

// field is one parsed field line, as offsets into the buffer that holds the
// head. drop marks it for removal when the head is forwarded.
type field struct {
	line  span // the whole line, CRLF included
	name  span
	value span // without leading and trailing OWS
	kind  fieldKind
	drop  bool
}

// targetForm is the form of a request target (RFC 9112 §3.2).
type targetForm uint8

const (
	formOrigin   targetForm = iota // /path?query
	formAbsolute                   // http://host/path?query
	formAsterisk                   // * (OPTIONS only)
)

// maxFields bounds Options.MaxHeaderCount.
const maxFields = 1024

// maxConnTokens bounds the options of Connection fields; more is a 400.
const maxConnTokens = 16

// request is a parsed request head: offsets into the stream's Front buffer
// and the facts that decide framing and forwarding. It is valid until the
// head is rewritten for forwarding.
type request struct {
	start, end int  // the head, CRLF CRLF included
	lineEnd    int  // end of the request line, CRLF included
	method     span // token
	target     span // as received
	path       span // path part used for routing (no query)
	authority  span // absolute-form authority, else the Host value
	form       targetForm
	minor      byte // HTTP/1.<minor>
	isHead     bool
	fields     []field

	hosts         int
	contentLength int64 // -1 when absent
	chunked       bool  // Transfer-Encoding: chunked
	hasTE         bool  // any Transfer-Encoding field
	connOptions
	upgrade   span // Upgrade value, when present and not h2c
	expect    bool // Expect: 100-continue
	requestID span
	userAgent span
}

// bodyKnown reports whether the request has a body to forward.
func (r *request) hasBody() bool { return r.chunked || r.contentLength > 0 }

// isUpgrade reports whether the request asks to switch protocols and may be
// tunnelled: Connection: upgrade, an Upgrade field other than h2c, and no
// body.
func (r *request) isUpgrade() bool {
	return r.connUpgrade && r.upgrade.e > r.upgrade.s && !r.hasBody()
}

// parseError is a status code and metrics cause for a request the proxy
// refuses; the zero value means success.
type parseError struct {
	status int
	cause  string
}

var (
	errBadRequest     = parseError{400, causeBadRequest}
	errNotImplemented = parseError{501, causeNotImplemented}
	errVersion        = parseError{505, causeVersion}
	errExpectation    = parseError{417, causeExpectation}
	errFieldsTooLarge = parseError{431, causeHeaderTooLarge}
)

// parseRequest parses the head found by h in buf. maxFields bounds the
// field lines. On success r describes the head; the error says how to
// answer otherwise.
func parseRequest(buf []byte, h *headScan, r *request) parseError {
	*r = request{start: h.start, end: h.pos, lineEnd: h.firstEnd, contentLength: -1, fields: r.fields[:0]}
	if e := r.parseRequestLine(buf[h.start : h.firstEnd-2]); e.status != 0 {
		return e
	}
	for off := h.firstEnd; off < h.pos-2; {
		eol := off + bytes.IndexByte(buf[off:h.pos], '\n') + 1
		if len(r.fields) == cap(r.fields) {
			return errFieldsTooLarge
		}
		f, ok := parseField(buf, off, eol)
		if !ok {
			return errBadRequest
		}
		r.fields = append(r.fields, f)
		if e := r.noteField(buf, &r.fields[len(r.fields)-1]); e.status != 0 {
			return e
		}
		off = eol
	}
	return r.checkFraming()
}

// parseRequestLine parses method SP request-target SP HTTP-version; line
// excludes the CRLF.
func (r *request) parseRequestLine(line []byte) parseError {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !validToken(line[:sp1]) {
		return errBadRequest
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequest
	}
	tgt, ver := rest[:sp2], rest[sp2+1:]
	for i, c := range tgt {
		if classes[c]&cTarget == 0 {
			return errBadRequest
		}
		if c == '%' && (i+2 >= len(tgt) || classes[tgt[i+1]]&cHex == 0 || classes[tgt[i+2]]&cHex == 0) {
			return errBadRequest // not a valid pct-encoding (RFC 3986 §2.1)
		}
	}
	base := r.start
	r.method = mkspan(base, base+sp1)
	r.target = mkspan(base+sp1+1, base+sp1+1+sp2)
	switch {
	case len(ver) == 8 && string(ver[:7]) == "HTTP/1." && (ver[7] == '0' || ver[7] == '1'):
		r.minor = ver[7] - '0'
	case len(ver) == 8 && string(ver[:5]) == "HTTP/" && isDigit(ver[5]) && ver[6] == '.' && isDigit(ver[7]):
		return errVersion
	default:
		return errBadRequest
	}
	method := line[:sp1]
	r.isHead = string(method) == "HEAD"
	if string(method) == "CONNECT" {
		return errNotImplemented
	}
	return r.parseTarget(tgt, int(r.target.s), string(method) == "OPTIONS")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseTarget classifies the request target (at offset off) and checks the
// path used for routing.
func (r *request) parseTarget(t []byte, off int, options bool) parseError {
	switch {
	case t[0] == '/':
		r.form = formOrigin
	case len(t) == 1 && t[0] == '*':
		if !options {
			return errBadRequest
		}
		r.form = formAsterisk
		r.path = mkspan(off, off+1)
		return parseError{}
	default:
		n := schemeLen(t)
		if n == 0 {
			return errBadRequest
		}
		a := n
		for a < len(t) && t[a] != '/' && t[a] != '?' {
			a++
		}
		if a == len(t) || t[a] != '/' || !validHost(t[n:a]) || a == n {
			return errBadRequest
		}
		r.form = formAbsolute
		r.authority = mkspan(off+n, off+a)
		t, off = t[a:], off+a
	}
	p := t
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		p = t[:q]
	}
	if badPath(p) {
		return errBadRequest
	}
	r.path = mkspan(off, off+len(p))
	return parseError{}
}

// schemeLen returns the length of a leading "http://" or "https://" (any
// case), or 0.
func schemeLen(t []byte) int {
	if len(t) >= 7 && eqFoldAny(t[:7], "http://") {
		return 7
	}
	if len(t) >= 8 && eqFoldAny(t[:8], "https://") {
		return 8
	}
	return 0
}

// badPath reports whether a path (starting with '/') has a dot segment,
// raw or percent-encoded ("/../", "/%2e%2e/", a trailing "/."), or a
// backslash. Such paths are refused so that the route matched here and the
// resource a backend resolves cannot differ.
func badPath(p []byte) bool {
	seg := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] == '\\' {
			return true
		}
		if i == len(p) || p[i] == '/' {
			if isDotSegment(p[seg:i]) {
				return true
			}
			seg = i + 1
		}
	}
	return false
}

func isDotSegment(s []byte) bool {
	dots := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case i+2 < len(s) && s[i] == '%' && s[i+1] == '2' && s[i+2]|0x20 == 'e':
			i += 3
		default:
			return false
		}
		dots++
	}
	return dots == 1 || dots == 2
}

// parseField parses the field line buf[off:eol] (CRLF included, already
// checked). It refuses obs-fold, whitespace before the colon, a name that
// is not a token, and control bytes in the value.
func parseField(buf []byte, off, eol int) (field, bool) {
	line := buf[off : eol-2]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !validToken(line[:colon]) {
		return field{}, false
	}
	v := line[colon+1:]
	if !validValue(v) {
		return field{}, false
	}
	vs := colon + 1
	for vs < len(line) && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	ve := len(line)
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	return field{
		line:  mkspan(off, eol),
		name:  mkspan(off, off+colon),
		value: mkspan(off+vs, off+ve),
		kind:  classify(line[:colon]),
	}, true
}

// noteField records what the proxy needs from f and marks it for removal
// when it is hop-by-hop or one the proxy sets itself.
func (r *request) noteField(buf []byte, f *field) parseError {
	v := f.value.in(buf)
	switch f.kind {
	case kindHost:
		r.hosts++
		if !validHost(v) {
			return errBadRequest
		}
		if r.form != formAbsolute {
			r.authority = f.value
		} else {
			f.drop = true // replaced by the target's authority (RFC 9112 §3.2.2)
		}
	case kindContentLength:
		n, ok := parseDecimal(v)
		if !ok || r.contentLength >= 0 {
			return errBadRequest // malformed, or repeated (RFC 9112 §6.3)
		}
		r.contentLength = n
	case kindTransferEncoding:
		return r.noteTransferEncoding(v)
	case kindConnection:
		f.drop = true
		return r.noteConnection(buf, f.value)
	case kindKeepAlive, kindProxyConnection, kindProxyAuthorization, kindHTTP2Settings:
		f.drop = true
	case kindTE:
		// Only "trailers" means something end to end; other TE values
		// are hop-by-hop (RFC 9110 §10.1.4).
		f.drop = !eqFoldAny(v, "trailers")
	case kindUpgrade:
		f.drop = true // kept only for an upgrade, see rewriteRequest
		if r.upgrade.e == 0 && len(v) > 0 && !isH2C(v) {
			r.upgrade = f.value
		}
	case kindExpect:
		if !eqFoldAny(v, "100-continue") {
			return errExpectation
		}
		r.expect = r.minor == 1
	case kindXRequestID:
		r.requestID = f.value
	case kindUserAgent:
		r.userAgent = f.value
	}
	return parseError{}
}

// isH2C reports whether an Upgrade value asks for h2c, which is never
// tunnelled (h2c smuggling would let a client bypass per-request routing).
func isH2C(v []byte) bool {
	first, _, _ := nextListItem(v)
	return eqFoldAny(first, "h2c")
}

// noteTransferEncoding accepts only "chunked" (RFC 9112 §6.1): chunked not
// last, or twice, is a 400; any other coding is a 501.
func (r *request) noteTransferEncoding(v []byte) parseError {
	for rest := v; ; {
		item, next, ok := nextListItem(rest)
		if !ok {
			return errBadRequest
		}
		switch {
		case r.chunked:
			return errBadRequest // something after chunked
		case eqFoldAny(item, "chunked"):
			r.chunked = true
		case validToken(item) || bytes.IndexByte(item, ';') > 0:
			r.hasTE = true
			return errNotImplemented
		default:
			return errBadRequest
		}
		if next == nil {
			break
		}
		rest = next
	}
	r.hasTE = true
	return parseError{}
}

// noteConnection records the options of a Connection field; a request
// with more named options than connOptions holds is refused.
func (r *request) noteConnection(buf []byte, val span) parseError {
	if ok, overflow := r.connOptions.note(buf, val); !ok || overflow {
		return errBadRequest
	}
	return parseError{}
}

// checkFraming applies RFC 9112 §6.3 and §3.2 once every field is seen.
func (r *request) checkFraming() parseError {
	switch {
	case r.minor == 1 && r.hosts != 1, r.hosts > 1:
		return errBadRequest // missing or repeated Host
	case r.hasTE && r.minor == 0:
		return errBadRequest // Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1)
	case r.hasTE && r.contentLength >= 0:
		return errBadRequest // both: refused, never forwarded (RFC 9112 §6.3)
	}
	return parseError{}
}
