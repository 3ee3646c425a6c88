package proxy

import (
	"strconv"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

// Causes recorded on streams and counted in kakehi_proxy_errors_total.
const (
	causeBadRequest         = metrics.CauseBadRequest
	causeHeaderTooLarge     = metrics.CauseHeaderTooLarge
	causeBodyTooLarge       = metrics.CauseBodyTooLarge
	causeNotImplemented     = metrics.CauseNotImplemented
	causeExpectation        = metrics.CauseExpectation
	causeVersion            = metrics.CauseVersion
	causeClientTimeout      = metrics.CauseClientTimeout
	causeClientAborted      = metrics.CauseClientAborted
	causeNoRoute            = metrics.CauseNoRoute
	causeNoBackend          = metrics.CauseNoBackend
	causePoolExhausted      = metrics.CausePoolExhausted
	causeRetriesExhausted   = metrics.CauseRetriesExhausted
	causeConnectTimeout     = metrics.CauseConnectTimeout
	causeBackendTimeout     = metrics.CauseBackendTimeout
	causeBackendError       = metrics.CauseBackendError
	causeBackendAborted     = metrics.CauseBackendAborted
	causeBackendBodyTimeout = metrics.CauseBackendBodyTimeout
	causeBackendGone        = metrics.CauseBackendGone
	causeMisdirected        = metrics.CauseMisdirected
)

// causeDetail explains, for the body of a proxy-generated error, why the
// backend did not answer; "" where the reason phrase says enough.
func causeDetail(cause string) string {
	switch cause {
	case causeBackendGone:
		return "Bad Gateway: the backend endpoint left the route table and its drain grace ran out"
	case causeBackendTimeout:
		return "Gateway Timeout: the backend did not answer in time"
	case causeConnectTimeout:
		return "Gateway Timeout: connecting to the backend timed out"
	case causeRetriesExhausted:
		return "Service Unavailable: no backend endpoint accepted the connection"
	case causeBackendError:
		return "Bad Gateway: the backend failed after it took the request"
	}
	return ""
}

// statusText returns the reason phrase of the codes the proxy sends.
func statusText(code int) string {
	switch code {
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// answer describes a response the proxy generates itself.
type answer struct {
	status     int
	cause      string
	detail     string // first line of the body; the reason phrase when empty
	retryAfter int    // seconds; 0 for none
	location   string // Location field (redirects); "" for none
	close      bool   // send Connection: close and close after
	head       bool   // the request was HEAD: no body
}

// appendAnswer formats a as a complete HTTP/1.1 response, with Date,
// Server and Content-Length, and appends it to dst.
func appendAnswer(dst []byte, a answer, now time.Time) []byte {
	text := statusText(a.status)
	body := a.detail
	if body == "" {
		body = causeDetail(a.cause)
	}
	if body == "" {
		body = text
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(a.status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nServer: kakehi\r\nDate: "...)
	dst = append(dst, dates.get(now)...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)+1), 10)
	dst = append(dst, "\r\n"...)
	if a.retryAfter > 0 {
		dst = append(dst, "Retry-After: "...)
		dst = strconv.AppendInt(dst, int64(a.retryAfter), 10)
		dst = append(dst, "\r\n"...)
	}
	if a.location != "" {
		dst = append(dst, "Location: "...)
		dst = append(dst, a.location...)
		dst = append(dst, "\r\n"...)
	}
	if a.close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	if !a.head {
		dst = append(dst, body...)
		dst = append(dst, '\n')
	}
	return dst
}
