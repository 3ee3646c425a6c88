package proxy

import "bytes"

// headScan finds the end of a message head incrementally, across reads,
// checking line endings as it goes: every line must end in CRLF (a bare LF
// is an error, see HTTP1.md), and empty lines before the start line are
// skipped (RFC 9112 §2.2).
type headScan struct {
	start     int // first byte of the start line
	pos       int // next byte to examine
	lineStart int // first byte of the line being scanned
	lines     int // complete lines: start line plus field lines
	firstEnd  int // end of the start line (after its LF); 0 until seen
}

// scanResult is what headScan.scan found.
type scanResult uint8

const (
	scanMore    scanResult = iota // no end of head yet
	scanDone                      // head complete; it ends at headScan.pos
	scanBareLF                    // a line ended in LF without CR
	scanTooMany                   // more than the allowed lines
)

// reset starts a scan of a head that begins at off.
func (h *headScan) reset(off int) {
	*h = headScan{start: off, pos: off, lineStart: off}
}

// scan examines buf[h.pos:end]. maxLines bounds the start line plus field
// lines.
func (h *headScan) scan(buf []byte, end, maxLines int) scanResult {
	for h.pos < end {
		i := bytes.IndexByte(buf[h.pos:end], '\n')
		if i < 0 {
			h.pos = end
			return scanMore
		}
		lf := h.pos + i
		h.pos = lf + 1
		if lf == h.lineStart || buf[lf-1] != '\r' {
			return scanBareLF
		}
		if lf-1 == h.lineStart { // empty line
			if h.lines == 0 { // before the start line: skip it
				h.start, h.lineStart = h.pos, h.pos
				continue
			}
			return scanDone
		}
		h.lines++
		if h.lines == 1 {
			h.firstEnd = h.pos
		}
		if h.lines > maxLines {
			return scanTooMany
		}
		h.lineStart = h.pos
	}
	return scanMore
}
