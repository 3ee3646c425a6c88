package proxy

import "time"

// rewriteRequest edits the request head in place for forwarding: it drops
// hop-by-hop fields (and those the Connection field names, except framing
// fields), the client's X-Forwarded-* unless trusted, and adds the proxy's
// X-Forwarded-*, X-Request-Id when absent, Host for an absolute-form
// target, and Connection: Upgrade for an upgrade. It reports false if the
// added fields do not fit.
func (c *conn) rewriteRequest() bool {
	ex, buf := c.ex, c.st.Front
	r := &ex.req
	cuts, have := c.requestCuts()
	if r.minor == 0 {
		// The proxy speaks HTTP/1.1 to backends (RFC 9110 §6.2), which
		// also lets HTTP/1.0 clients share keep-alive connections.
		buf[r.lineEnd-3] = '1'
	}
	add := c.requestAdds(have)
	removed := 0
	for _, cut := range cuts {
		removed += cut.len()
	}
	if r.start+removed < len(add) {
		return false
	}
	ex.cuts, ex.add = cuts, add
	ex.outStart = rewriteHead(buf, r.start, r.end, cuts, add, ex.segs)
	return true
}

// forwardedKept says which of the client's X-Forwarded-Proto, -Host and
// -Port are kept (trusted), indexed by kind-kindXForwardedFor.
type forwardedKept [4]bool

// requestCuts lists the byte ranges of the request head that are not
// forwarded.
func (c *conn) requestCuts() ([]span, forwardedKept) {
	ex, buf, trust := c.ex, c.st.Front, c.srv.opt.TrustForwardedHeaders
	r := &ex.req
	upgrade := r.isUpgrade()
	cuts := ex.cuts[:0]
	if r.form == formAbsolute {
		cuts = append(cuts, mkspan(int(r.target.s), int(r.path.s)))
	}
	toks := r.connTokens[:r.nConnTokens]
	var have forwardedKept
	for i := range r.fields {
		f := &r.fields[i]
		drop := f.drop
		switch f.kind {
		case kindXForwardedFor:
			drop = drop || !trust
		case kindXForwardedProto, kindXForwardedHost, kindXForwardedPort:
			drop = drop || !trust
			have[f.kind-kindXForwardedFor] = !drop
		case kindUpgrade:
			drop = !upgrade || f.value != r.upgrade
		}
		if !drop && len(toks) > 0 && !framingField(f.kind) && namedByConnection(buf, f, toks) {
			drop = true
		}
		if drop {
			cuts = append(cuts, f.line)
		}
	}
	return cuts, have
}

// requestAdds returns the field lines the proxy adds to the request.
func (c *conn) requestAdds(have forwardedKept) []byte {
	ex, buf := c.ex, c.st.Front
	r := &ex.req
	add := ex.add[:0]
	switch {
	case r.form == formAbsolute:
		add = appendLine(add, "Host", r.authority.in(buf))
	case r.hosts == 0: // HTTP/1.0 without Host (RFC 9112 §3.2: empty Host)
		add = append(add, "Host: \r\n"...)
	}
	add = appendLine(add, "X-Forwarded-For", c.xff)
	if !have[kindXForwardedProto-kindXForwardedFor] {
		add = appendLineS(add, "X-Forwarded-Proto", c.proto)
	}
	if !have[kindXForwardedHost-kindXForwardedFor] && r.authority.len() > 0 {
		add = appendLine(add, "X-Forwarded-Host", r.authority.in(buf))
	}
	if !have[kindXForwardedPort-kindXForwardedFor] && c.port != nil {
		add = appendLine(add, "X-Forwarded-Port", c.port)
	}
	if r.requestID.len() == 0 {
		add = appendLineS(add, "X-Request-Id", c.st.Ctx.RequestID)
	}
	if r.isUpgrade() {
		add = append(add, "Connection: Upgrade\r\n"...)
	}
	return add
}

// rewriteResponse edits the response head in Back in place: hop-by-hop
// fields and those the Connection field names go (framing fields stay),
// Transfer-Encoding goes when the body is decoded for an HTTP/1.0 client,
// Date and Server are added when absent (final responses only), and the
// proxy's own Connection field is added. now is unused for 1xx.
func (c *conn) rewriteResponse(mode bodyMode, decode bool, now time.Time) int {
	ex, buf := c.ex, c.st.Back
	r := &ex.resp
	toks := r.connTokens[:r.nConnTokens]
	cuts := ex.cuts[:0]
	for i := range r.fields {
		f := &r.fields[i]
		drop := f.drop
		switch f.kind {
		case kindUpgrade:
			drop = mode != bodyTunnel
		case kindTransferEncoding:
			drop = decode
		}
		if !drop && len(toks) > 0 && !framingField(f.kind) && namedByConnection(buf, f, toks) {
			drop = true
		}
		if drop {
			cuts = append(cuts, f.line)
		}
	}
	add := ex.add[:0]
	if r.status >= 200 {
		if !r.hasDate {
			add = appendLine(add, "Date", dates.get(now))
		}
		if !r.hasServer {
			add = append(add, "Server: kakehi\r\n"...)
		}
		add = c.appendAffinity(add)
	}
	if mode == bodyTunnel {
		add = append(add, "Connection: Upgrade\r\n"...)
	} else if r.status >= 200 {
		switch {
		case c.closeConn:
			add = append(add, "Connection: close\r\n"...)
		case ex.req.minor == 0:
			add = append(add, "Connection: keep-alive\r\n"...)
		}
	}
	ex.add = add
	return rewriteHead(buf, r.start, r.end, cuts, add, ex.segs)
}
