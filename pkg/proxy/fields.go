package proxy

import "bytes"

// Byte classes for strict HTTP/1.1 parsing (RFC 9110 §5.1, §5.5, §5.6.2;
// RFC 3986 for request targets and hosts).
const (
	cTchar  uint8 = 1 << iota // token character: field names, methods, codings
	cVchar                    // allowed inside a field value: VCHAR, obs-text, SP, HTAB
	cTarget                   // allowed in a request target: VCHAR without '#'
	cHost                     // allowed in a reg-name host: ALPHA DIGIT - . _ ~
	cHex                      // hex digit
)

var classes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isAlpha := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
		isDigit := '0' <= b && b <= '9'
		if isAlpha || isDigit || containsByte("!#$%&'*+-.^_`|~", b) {
			t[c] |= cTchar
		}
		if b == '\t' || b == ' ' || (0x21 <= b && b <= 0x7e) || b >= 0x80 {
			t[c] |= cVchar
		}
		if 0x21 <= b && b <= 0x7e && b != '#' {
			t[c] |= cTarget
		}
		if isAlpha || isDigit || b == '-' || b == '.' || b == '_' || b == '~' {
			t[c] |= cHost
		}
		if isDigit || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' {
			t[c] |= cHex
		}
	}
	return t
}()

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// fieldKind names the header fields the proxy acts on; every other field is
// kindOther and is forwarded untouched.
type fieldKind uint8

const (
	kindOther fieldKind = iota
	kindHost
	kindContentLength
	kindTransferEncoding
	kindConnection
	kindKeepAlive
	kindProxyConnection
	kindTE
	kindUpgrade
	kindExpect
	kindXForwardedFor
	kindXForwardedProto
	kindXForwardedHost
	kindXForwardedPort
	kindXRequestID
	kindUserAgent
	kindProxyAuthorization
	kindDate
	kindServer
	kindHTTP2Settings
)

// classify returns the kind of a (valid token) field name, ignoring case.
func classify(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return kindTE
		}
	case 4:
		if eqFold(name, "host") {
			return kindHost
		}
		if eqFold(name, "date") {
			return kindDate
		}
	case 6:
		if eqFold(name, "expect") {
			return kindExpect
		}
		if eqFold(name, "server") {
			return kindServer
		}
	case 7:
		if eqFold(name, "upgrade") {
			return kindUpgrade
		}
	case 10:
		switch {
		case eqFold(name, "connection"):
			return kindConnection
		case eqFold(name, "keep-alive"):
			return kindKeepAlive
		case eqFold(name, "user-agent"):
			return kindUserAgent
		}
	case 12:
		if eqFold(name, "x-request-id") {
			return kindXRequestID
		}
	case 14:
		if eqFold(name, "content-length") {
			return kindContentLength
		}
		if eqFold(name, "http2-settings") {
			return kindHTTP2Settings
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return kindXForwardedFor
		}
	case 16:
		switch {
		case eqFold(name, "proxy-connection"):
			return kindProxyConnection
		case eqFold(name, "x-forwarded-host"):
			return kindXForwardedHost
		case eqFold(name, "x-forwarded-port"):
			return kindXForwardedPort
		}
	case 17:
		switch {
		case eqFold(name, "transfer-encoding"):
			return kindTransferEncoding
		case eqFold(name, "x-forwarded-proto"):
			return kindXForwardedProto
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return kindProxyAuthorization
		}
	}
	return kindOther
}

// eqFold reports whether b equals lower, ignoring ASCII case. lower must be
// lower-case letters, digits and '-'; b must be a token (so that |0x20 maps
// no other token byte onto those).
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// eqFoldAny is eqFold for a b that may hold any bytes.
func eqFoldAny(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// validToken reports whether b is a non-empty token.
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if classes[c]&cTchar == 0 {
			return false
		}
	}
	return true
}

// validValue reports whether b holds only field-value bytes (no CR, LF,
// NUL or other controls besides HTAB).
func validValue(b []byte) bool {
	for _, c := range b {
		if classes[c]&cVchar == 0 {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// maxHostLen bounds a Host value: a 253-byte name, or a bracketed IPv6
// literal, plus ":65535".
const maxHostLen = 261

// validHost reports whether b is a valid Host value (RFC 9110 §7.2): an
// empty value, a reg-name of ALPHA DIGIT - . _ ~, an IPv4 address, or a
// bracketed IPv6 literal, each with an optional port of up to five digits.
// Percent-encoded and sub-delim reg-names are refused.
func validHost(b []byte) bool {
	if len(b) > maxHostLen {
		return false
	}
	i := 0
	if len(b) > 0 && b[0] == '[' {
		i = 1
		for i < len(b) && (classes[b[i]]&cHex != 0 || b[i] == ':' || b[i] == '.') {
			i++
		}
		if i == 1 || i >= len(b) || b[i] != ']' {
			return false
		}
		i++
	} else {
		for i < len(b) && classes[b[i]]&cHost != 0 {
			i++
		}
	}
	if i == len(b) {
		return true
	}
	if b[i] != ':' {
		return false
	}
	port := b[i+1:]
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length value: 1 to 18 digits, nothing else.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// nextListItem splits the first element off a comma-separated field value
// (RFC 9110 §5.6.1), trimming OWS. ok is false for an empty element.
func nextListItem(v []byte) (item, rest []byte, ok bool) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	item = trimOWS(v[:i])
	if i < len(v) {
		rest = v[i+1:]
		if len(trimOWS(rest)) == 0 {
			return item, nil, false // trailing comma
		}
	}
	return item, rest, len(item) > 0
}

// connOptions are the options of a message's Connection fields.
type connOptions struct {
	connClose     bool
	connKeepAlive bool
	connUpgrade   bool
	connTokens    [maxConnTokens]span // other options: names of hop-by-hop fields
	nConnTokens   int
}

// note records the options of one Connection field value val in buf. It
// reports ok false for a malformed list, and overflow when more named
// options came than connTokens holds (the extra ones are not kept).
func (o *connOptions) note(buf []byte, val span) (ok, overflow bool) {
	v := val.in(buf)
	for rest := v; ; {
		item, next, valid := nextListItem(rest)
		if !valid || !validToken(item) {
			return false, overflow
		}
		switch {
		case eqFold(item, "close"):
			o.connClose = true
		case eqFold(item, "keep-alive"):
			o.connKeepAlive = true
		case eqFold(item, "upgrade"):
			o.connUpgrade = true
		case o.nConnTokens == maxConnTokens:
			overflow = true
		default:
			s := int(val.s) + (len(v) - len(rest)) + bytes.Index(rest, item)
			o.connTokens[o.nConnTokens] = mkspan(s, s+len(item))
			o.nConnTokens++
		}
		if next == nil {
			return true, overflow
		}
		rest = next
	}
}
