package proxy

import (
	"bytes"
	"strconv"
	"time"

	"github.com/kakehi/kakehi/pkg/route"
)

// policyMaxAttempts is the most backend attempts a RoutePolicy may ask for
// (the CRD's bound); the stream pool allows at least that many links per
// request, and the proxy enforces the effective bound itself.
const policyMaxAttempts = 10

// affinityRoom is the extra space kept before a response head when the
// route sets an affinity cookie: enough for the longest Set-Cookie line
// (a 128-byte name, the key, Path, HttpOnly, Max-Age and Secure).
const affinityRoom = 256

// policyState is one request's view of its route's Policy: the policy and
// copies of the request facts that the backend choice needs, taken from
// the head before it is rewritten or overwritten. Its buffers are reused
// from request to request; with no policy nothing is read or copied.
type policyState struct {
	p         *route.Policy
	key       []byte // ConsistentHash key, when hasKey
	cookie    []byte // the affinity cookie's value, when hasCookie
	out       []byte // scratch for the Set-Cookie value
	hasKey    bool
	hasCookie bool
}

// reset starts a request on a route with policy p (nil: the defaults).
func (ps *policyState) reset(p *route.Policy) {
	ps.p, ps.hasKey, ps.hasCookie = p, false, false
}

// capture copies the hash key and the affinity cookie out of head, an
// HTTP/1.1 request head (request line, field lines, each ending in CRLF).
// clientIP is the connection's peer address; with trustXFF the first
// X-Forwarded-For entry replaces it when there is one.
func (ps *policyState) capture(head, clientIP []byte, trustXFF bool) {
	p := ps.p
	if p == nil || (p.Balance != route.ConsistentHash && p.AffinityCookie == "") {
		return
	}
	wantKey := p.Balance == route.ConsistentHash
	if wantKey && p.HashOn == route.HashClientAddr {
		ps.setKey(clientIP)
	}
	first := true
	for off := lineEnd(head, 0); off < len(head); {
		end := lineEnd(head, off)
		line := head[off:max(off, end-2)]
		off = end
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, val := line[:colon], trimOWS(line[colon+1:])
		switch {
		case eqFold(name, "cookie"):
			ps.captureCookies(val, wantKey && p.HashOn == route.HashCookie)
		case wantKey && p.HashOn == route.HashHeader && !ps.hasKey && eqFoldBytes(name, sbytes(p.HashName)):
			ps.setKey(val)
		case wantKey && p.HashOn == route.HashClientAddr && trustXFF && first && eqFold(name, "x-forwarded-for"):
			first = false
			if item, _, ok := nextListItem(val); ok && len(item) > 0 {
				ps.setKey(item)
			}
		}
	}
}

// captureCookies looks through one Cookie field value ("a=b; c=d") for the
// affinity cookie and, when hash is set, the hash cookie.
func (ps *policyState) captureCookies(v []byte, hash bool) {
	p := ps.p
	for len(v) > 0 {
		i := bytes.IndexByte(v, ';')
		pair := v
		if i >= 0 {
			pair, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		pair = trimOWS(pair)
		eq := bytes.IndexByte(pair, '=')
		if eq <= 0 {
			continue
		}
		name, val := pair[:eq], pair[eq+1:]
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		if p.AffinityCookie != "" && !ps.hasCookie && string(name) == p.AffinityCookie {
			ps.cookie, ps.hasCookie = append(ps.cookie[:0], val...), true
		}
		if hash && !ps.hasKey && string(name) == p.HashName {
			ps.setKey(val)
		}
	}
}

func (ps *policyState) setKey(v []byte) {
	ps.key, ps.hasKey = append(ps.key[:0], v...), true
}

// pick chooses the backend of an attempt: the affinity cookie's backend
// while it is live (and not the failed one), else by the policy's balance;
// avoid is the previous attempt's backend.
func (ps *policyState) pick(cl *route.Cluster, avoid *route.Backend) *route.Backend {
	p := ps.p
	if p == nil {
		return cl.Pick(avoid)
	}
	if ps.hasCookie {
		if b := cl.BySticky(bstr(ps.cookie)); b != nil && b != avoid {
			return b
		}
	}
	switch p.Balance {
	case route.LeastRequest:
		return cl.PickLeastRequest(avoid)
	case route.ConsistentHash:
		if ps.hasKey {
			return cl.PickHashed(bstr(ps.key), avoid)
		}
	}
	return cl.Pick(avoid)
}

// cookieValue returns the Set-Cookie value that pins the client to b, or
// nil when the route has no affinity or the request already carried it.
// It aliases scratch space valid until the next call.
func (ps *policyState) cookieValue(b *route.Backend, secure bool) []byte {
	p := ps.p
	if p == nil || p.AffinityCookie == "" || b == nil {
		return nil
	}
	key := b.StickyKey()
	if ps.hasCookie && bstr(ps.cookie) == key {
		return nil
	}
	v := append(ps.out[:0], p.AffinityCookie...)
	v = append(v, '=')
	v = append(v, key...)
	v = append(v, "; Path=/; HttpOnly"...)
	if p.AffinityTTL > 0 {
		v = append(v, "; Max-Age="...)
		v = strconv.AppendInt(v, max(1, int64(p.AffinityTTL/time.Second)), 10)
	}
	if secure {
		v = append(v, "; Secure"...)
	}
	ps.out = v
	return v
}

// connectTimeout returns the route's connect timeout, else the default.
func (ps *policyState) connectTimeout(o *Options) time.Duration {
	if ps.p != nil && ps.p.ConnectTimeout > 0 {
		return ps.p.ConnectTimeout
	}
	return o.BackendConnectTimeout
}

// responseTimeout returns the route's response-head timeout, else the
// default.
func (ps *policyState) responseTimeout(o *Options) time.Duration {
	if ps.p != nil && ps.p.RequestTimeout > 0 {
		return ps.p.RequestTimeout
	}
	return o.BackendResponseTimeout
}

// idleTimeout returns the route's body idle timeout, else the default.
func (ps *policyState) idleTimeout(o *Options) time.Duration {
	if ps.p != nil && ps.p.IdleTimeout > 0 {
		return ps.p.IdleTimeout
	}
	return o.BodyIdleTimeout
}

// maxAttempts returns the route's attempt bound, else the default.
func (ps *policyState) maxAttempts(o *Options) int {
	if ps.p != nil && ps.p.MaxAttempts > 0 {
		return min(ps.p.MaxAttempts, policyMaxAttempts)
	}
	return o.MaxAttempts
}

// maxBody returns the route's request body bound (0: none), else the
// default.
func (ps *policyState) maxBody(o *Options) int64 {
	if ps.p != nil && ps.p.MaxRequestBody >= 0 {
		return ps.p.MaxRequestBody
	}
	return o.MaxRequestBody
}

// retryOn reports whether the route allows a retry after cond.
func (ps *policyState) retryOn(cond route.RetryOn) bool { return ps.p.Retries().Has(cond) }

// retryConnectTimeout reports whether a connect timeout counts as a
// connect failure: only when the route's retries name connect-failure
// explicitly. By default a connect timeout is a 504, never retried.
func (ps *policyState) retryConnectTimeout() bool {
	return ps.p != nil && ps.p.RetryOn.Has(route.RetryConnectFailure)
}

// retryStatus reports whether the route retries a response of status.
func (ps *policyState) retryStatus(status int) bool {
	if ps.p == nil {
		return false
	}
	switch status {
	case 502:
		return ps.p.RetryOn.Has(route.RetryStatus502)
	case 503:
		return ps.p.RetryOn.Has(route.RetryStatus503)
	case 504:
		return ps.p.RetryOn.Has(route.RetryStatus504)
	}
	return false
}

// wholeResponse reports whether the response parsed in buf is complete in
// its first rw bytes with nothing after it, so that its connection can be
// reused without reading further.
func wholeResponse(r *response, head bool, rw int) bool {
	switch {
	case r.bodyless(head):
		return rw == r.end
	case r.chunked || r.hasTE || r.contentLength < 0:
		return false
	}
	return int64(rw-r.end) == r.contentLength
}

// lineEnd returns the offset just past the LF that ends the line starting
// at off, or len(b).
func lineEnd(b []byte, off int) int {
	if i := bytes.IndexByte(b[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(b)
}
