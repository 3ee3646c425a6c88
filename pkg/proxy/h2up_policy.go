package proxy

import "net/http"

// h2cRetryStatus reports whether the h2c response resp has a status the
// route retries (status-502/503/504) for an idempotent request without a
// body, while an attempt remains; the caller then discards it.
func (s *h2Stream) h2cRetryStatus(resp *http.Response) bool {
	return s.pol.retryStatus(resp.StatusCode) && s.endStream && idempotent(s.method) &&
		s.st.Attempts() < s.pol.maxAttempts(&s.h.srv.opt)
}
