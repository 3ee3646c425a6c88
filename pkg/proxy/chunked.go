package proxy

import "errors"

// Errors of chunked framing.
var (
	errChunkSyntax   = errors.New("proxy: invalid chunked framing")
	errChunkTooLarge = errors.New("proxy: chunked body over the limit")
)

// chunk parser states.
const (
	ckSize    uint8 = iota // chunk-size hex digits
	ckExt                  // chunk extension, up to CR
	ckSizeLF               // LF after the size line
	ckData                 // chunk data; size holds what is left
	ckDataCR               // CR after the data
	ckDataLF               // LF after the data
	ckTrailer              // start of a trailer line, or the final CRLF
	ckTrName               // trailer field name
	ckTrValue              // trailer field value
	ckTrLF                 // LF ending a trailer line
	ckEndLF                // LF of the final CRLF
	ckDone                 // body complete
)

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// chunker validates a chunked body (RFC 9112 §7.1) as it streams, so that
// only well-framed bytes are forwarded. Extensions are allowed but must be
// free of control bytes; whitespace before an extension's ';', a bare LF,
// a size of more than 15 hex digits, data not followed by CRLF, or a
// malformed trailer is an error. Trailer fields
// follow the field-line rules of heads.
type chunker struct {
	state     uint8
	digits    uint8
	size      int64 // current chunk size, then data left
	line      int   // bytes of the current size or trailer line
	trailers  int   // trailer fields seen
	data      int64 // data bytes seen
	maxData   int64 // 0: unlimited
	maxFields int
	maxLine   int // bound of a trailer line
}

// reset prepares k for a new body. maxData bounds the data (0 for none);
// maxFields and maxLine bound the trailer section.
func (k *chunker) reset(maxData int64, maxFields, maxLine int) {
	*k = chunker{maxData: maxData, maxFields: maxFields, maxLine: maxLine}
}

// done reports whether the whole body, trailers included, was seen.
func (k *chunker) done() bool { return k.state == ckDone }

// feed validates p. It returns how many bytes of p belong to the body
// (all of p unless the body ends inside it) and, when decode is set, moves
// the chunk data down to p[:out] (framing and trailers removed); when
// decode is not set out equals n.
func (k *chunker) feed(p []byte, decode bool) (n, out int, err error) {
	for n < len(p) && k.state != ckDone {
		if k.state == ckData {
			m := int64(len(p) - n)
			if m > k.size {
				m = k.size
			}
			if decode {
				copy(p[out:], p[n:n+int(m)])
				out += int(m)
			}
			n += int(m)
			k.size -= m
			if k.size == 0 {
				k.state = ckDataCR
			}
			continue
		}
		if err := k.step(p[n]); err != nil {
			return n, out, err
		}
		n++
	}
	if !decode {
		out = n
	}
	return n, out, nil
}

// step advances the framing state machine by one byte.
func (k *chunker) step(c byte) error {
	switch k.state {
	case ckSize:
		return k.sizeByte(c)
	case ckExt:
		if c == '\r' {
			k.state = ckSizeLF
		} else if classes[c]&cVchar == 0 {
			return errChunkSyntax
		}
	case ckSizeLF:
		return k.sizeLF(c)
	case ckDataCR:
		return k.expect(c, '\r', ckDataLF)
	case ckDataLF:
		if err := k.expect(c, '\n', ckSize); err != nil {
			return err
		}
		k.digits, k.size, k.line = 0, 0, 0
	case ckTrailer, ckTrName, ckTrValue, ckTrLF, ckEndLF:
		return k.trailerByte(c)
	}
	return k.countLine()
}

func (k *chunker) expect(c, want byte, next uint8) error {
	if c != want {
		return errChunkSyntax
	}
	k.state = next
	return nil
}

func (k *chunker) countLine() error {
	k.line++
	if (k.state == ckExt || k.state == ckSize) && k.line > maxChunkLine {
		return errChunkSyntax
	}
	if k.state >= ckTrName && k.state <= ckTrLF && k.line > k.maxLine {
		return errChunkTooLarge
	}
	return nil
}

func (k *chunker) sizeByte(c byte) error {
	if classes[c]&cHex != 0 {
		if k.digits == 15 {
			return errChunkSyntax
		}
		k.digits++
		k.size = k.size<<4 | int64(unhex(c))
		return nil
	}
	if k.digits == 0 {
		return errChunkSyntax
	}
	switch c {
	case '\r':
		k.state = ckSizeLF
	case ';':
		k.state = ckExt
	default: // whitespace before ';' (BWS) is refused, as net/http does
		return errChunkSyntax
	}
	return nil
}

func (k *chunker) sizeLF(c byte) error {
	if c != '\n' {
		return errChunkSyntax
	}
	k.line = 0
	if k.size == 0 {
		k.state = ckTrailer
		return nil
	}
	k.data += k.size
	if k.maxData > 0 && k.data > k.maxData {
		return errChunkTooLarge
	}
	k.state = ckData
	return nil
}

// trailerByte validates the trailer section: field lines, then CRLF.
func (k *chunker) trailerByte(c byte) error {
	switch k.state {
	case ckTrailer:
		switch {
		case c == '\r':
			k.state = ckEndLF
		case classes[c]&cTchar != 0:
			k.trailers++
			if k.trailers > k.maxFields {
				return errChunkTooLarge
			}
			k.state, k.line = ckTrName, 0
		default:
			return errChunkSyntax // obs-fold, stray bytes
		}
	case ckTrName:
		if c == ':' {
			k.state = ckTrValue
		} else if classes[c]&cTchar == 0 {
			return errChunkSyntax
		}
	case ckTrValue:
		if c == '\r' {
			k.state = ckTrLF
		} else if classes[c]&cVchar == 0 {
			return errChunkSyntax
		}
	case ckTrLF:
		if err := k.expect(c, '\n', ckTrailer); err != nil {
			return err
		}
	case ckEndLF:
		return k.expect(c, '\n', ckDone)
	}
	return k.countLine()
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
