package proxy

import (
	"errors"

	"golang.org/x/net/http2"
)

// errH2BodyTooLarge says that the client sent more body bytes than the
// route allows.
var errH2BodyTooLarge = errors.New("proxy: request body over the limit")

// limitBody sets the stream's request body bound once it is routed (lim is
// the route policy's MaxRequestBody, else the global option; 0: none). It
// reports false when the body is already known to be over it, by its
// content-length or by the DATA received so far; the caller answers 413.
// Until then DATA is only buffered in the ring, so nothing over the bound
// can have reached a backend.
func (s *h2Stream) limitBody(lim int64) bool {
	if lim <= 0 || s.endStream {
		return true
	}
	if s.cl > lim {
		return false
	}
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	s.bodyLimit = lim
	if s.bodyIn > lim {
		s.tooLarge = true
	}
	return !s.tooLarge
}

// overLimitLocked handles a DATA frame that takes the body over the
// stream's bound (h.mu held). The frame is dropped, as is any later one.
// When no response header block was sent yet, the stream's goroutine is
// woken to answer 413 (finish then sends RST_STREAM(NO_ERROR), RFC 9113
// §8.1): the body pump fails with errH2BodyTooLarge and the backend
// exchange is interrupted. Else the stream is reset with CANCEL.
func (h *h2Conn) overLimitLocked(s *h2Stream) error {
	s.tooLarge = true
	if s.sentHead {
		return h.resetLocked(s, http2.ErrCodeCancel)
	}
	s.interruptLocked()
	return nil
}

// overLimit reports whether the stream's body went over its bound.
func (s *h2Stream) overLimit() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.tooLarge
}

// answerTooLarge answers 413 for a body over its bound.
func (s *h2Stream) answerTooLarge() outcome {
	s.answerLocal(answer{status: 413, cause: causeBodyTooLarge})
	return outDone
}
