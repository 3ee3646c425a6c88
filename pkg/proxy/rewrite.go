package proxy

// rewriteHead edits the head buf[start:end) in place without re-encoding
// it: the byte ranges in cuts (sorted, disjoint, inside [start, end-2)) are
// removed and add is inserted before the final CRLF, so that the new head
// still ends at end and whatever follows it in buf (body bytes) needs no
// move. It returns the new start of the head; the caller guarantees that
// start plus the removed bytes is at least len(add). segs is scratch space
// for at least len(cuts)+1 spans.
func rewriteHead(buf []byte, start, end int, cuts []span, add []byte, segs []span) int {
	body := end - 2
	removed := 0
	segs = segs[:0]
	pos := start
	for _, c := range cuts {
		removed += c.len()
		if int(c.s) > pos {
			segs = append(segs, mkspan(pos, int(c.s)))
		}
		pos = int(c.e)
	}
	if pos < body {
		segs = append(segs, mkspan(pos, body))
	}
	newStart := start + removed - len(add)
	// Each kept segment moves by (its destination - its source). These
	// shifts never increase from one segment to the next, so the segments
	// that move left are copied first, left to right, and those that move
	// right afterwards, right to left; no copy then overwrites bytes that
	// are still to be moved.
	dest := newStart
	m := len(segs)
	for i, sg := range segs {
		if dest <= int(sg.s) {
			m = i
			break
		}
		dest += sg.len()
	}
	d := dest
	for _, sg := range segs[m:] {
		d += copy(buf[d:], sg.in(buf))
	}
	d = dest
	for i := m - 1; i >= 0; i-- {
		d -= segs[i].len()
		copy(buf[d:], segs[i].in(buf))
	}
	copy(buf[body-len(add):body], add)
	return newStart
}

// eqFoldBytes reports whether a and b are equal ignoring ASCII case; both
// are tokens.
func eqFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// namedByConnection reports whether the field's name is one of the
// Connection options in toks (RFC 9110 §7.6.1).
func namedByConnection(buf []byte, f *field, toks []span) bool {
	name := f.name.in(buf)
	for _, t := range toks {
		if eqFoldBytes(name, t.in(buf)) {
			return true
		}
	}
	return false
}

// framingField reports whether a field kind decides message framing or
// routing, and so must never be removed because a Connection option names
// it (that would let a client strip Content-Length behind the proxy).
func framingField(k fieldKind) bool {
	return k == kindHost || k == kindContentLength || k == kindTransferEncoding
}

// appendLine appends "name: value\r\n".
func appendLine(dst []byte, name string, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// appendLineS is appendLine for a string value.
func appendLineS(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}
