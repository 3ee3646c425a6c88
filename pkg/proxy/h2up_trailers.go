package proxy

import "golang.org/x/net/http2/hpack"

// feedChunk is s.chunk.feed(p, true) that also keeps the raw trailer
// section of the body in s.rtr (nil when it has no field), so that the
// backend's trailers reach the client as a trailing HEADERS frame.
func (s *h2Stream) feedChunk(p []byte) (n, out int, err error) {
	return feedKeepTrailers(&s.chunk, p, &s.rtr)
}

// sendTrailerLines sends the backend's trailer fields in s.rtr as
// HEADERS with END_STREAM: lower-case names, without the fields that
// are not allowed in trailers.
func (s *h2Stream) sendTrailerLines() error {
	_, err := s.h.sendHead(s, func(enc *hpack.Encoder) {
		trailerLines(s.rtr, func(name, value string) {
			switch classify(sbytes(name)) {
			case kindConnection, kindKeepAlive, kindProxyConnection, kindTransferEncoding,
				kindUpgrade, kindContentLength, kindHost, kindTE:
				return
			}
			lower := sbytes(name) // s.rtr is the stream's own buffer
			for i, c := range lower {
				if 'A' <= c && c <= 'Z' {
					lower[i] = c + 'a' - 'A'
				}
			}
			_ = enc.WriteField(hpack.HeaderField{Name: name, Value: value})
		})
	}, nil, true)
	return err
}
