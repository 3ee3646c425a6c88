package proxy

import (
	"unsafe"
)

// Bounds of the copies of request facts kept for the access log.
const (
	metaSize       = 2048
	maxLogTarget   = 1024
	maxLogAgent    = 400
	maxLogID       = 128
	maxLogAuthorty = maxHostLen
	maxLogMethod   = 32
)

// exchange is the per-request parse state that goes with a checked-out
// stream: the head scanners, the parsed request and response, scratch space
// for rewriting heads, and stable copies of the request facts that the
// stream's Context points at. Exchanges are pooled; a connection holds one
// only while it holds a stream.
type exchange struct {
	scan   headScan
	req    request
	resp   response
	chunk  chunker // request body, used by the pump goroutine
	rchunk chunker // response body
	cuts   []span
	segs   []span
	add    []byte // lines added to a forwarded head
	meta   []byte // backing bytes of the stream's Context strings
	line   []byte // access-log line being formatted

	// request body in the Front buffer, set by prepareBody:
	bodyEnd   int   // end of the body bytes (and of what to forward) in Front
	bodyLeft  int64 // Content-Length bytes still to read from the client
	bodyMore  bool  // the body continues beyond the buffer
	bodyIn    int64 // body bytes read from the client
	outStart  int   // start of the rewritten head in Front
	continued bool  // a 100 Continue was forwarded to the client

	pol policyState // the route's policy, see policy.go
	up  *h1Up       // the h2c exchange, when the backend speaks h2c (h1up.go)
}

func newExchange(maxFields int) *exchange {
	fields := make([]field, 0, maxFields)
	return &exchange{
		req:  request{fields: fields},
		resp: response{fields: fields}, // shared: the request's are done with by then
		cuts: make([]span, 0, maxFields+2),
		segs: make([]span, 0, maxFields+3),
		add:  make([]byte, 0, headRoom),
		meta: make([]byte, 0, metaSize),
		line: make([]byte, 0, 4096),
	}
}

// keep copies b (truncated to max bytes) into the exchange's meta area and
// returns a string that aliases the copy. The string is valid until the
// exchange's next request; the stream Observer copies what it keeps.
func (ex *exchange) keep(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
	}
	if len(b) == 0 || len(ex.meta)+len(b) > cap(ex.meta) {
		return ""
	}
	i := len(ex.meta)
	ex.meta = append(ex.meta, b...)
	return unsafe.String(&ex.meta[i], len(b))
}

// bstr returns a string that aliases b without copying. It is for lookups
// that do not retain the string (route matching).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
