package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// dateCache holds the current Date field value (RFC 9110 §5.6.7), formatted
// at most once per second and shared by every connection.
type dateCache struct {
	cur atomic.Pointer[dateValue]
}

type dateValue struct {
	sec int64
	b   [29]byte
}

var dates dateCache

// get returns the IMF-fixdate for now. The slice must not be modified.
func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.cur.Load(); v != nil && v.sec == sec {
		return v.b[:]
	}
	v := &dateValue{sec: sec}
	now.UTC().AppendFormat(v.b[:0], "Mon, 02 Jan 2006 15:04:05 GMT")
	d.cur.Store(v)
	return v.b[:]
}

// idGen makes request ids: a random per-process prefix and a counter, so
// that making one costs an atomic add, not a read of crypto/rand.
type idGen struct {
	prefix [13]byte // 12 hex digits and '-'
	n      atomic.Uint64
}

func newIDGen() *idGen {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	g := &idGen{}
	hex.Encode(g.prefix[:12], raw[:])
	g.prefix[12] = '-'
	return g
}

// appendID appends a fresh request id to dst.
func (g *idGen) appendID(dst []byte) []byte {
	dst = append(dst, g.prefix[:]...)
	return strconv.AppendUint(dst, g.n.Add(1), 16)
}

// deadline remembers the last deadline set on one direction of a
// connection so that it is moved only when it must: extending a deadline by
// less than an eighth of its timeout is skipped, which removes a runtime
// timer update from most requests at the price of timeouts that may fire
// up to 1/8 early.
type deadline struct {
	at time.Time
}

// need reports whether a deadline of now+d must be set, and records it.
func (dl *deadline) need(now time.Time, d time.Duration) (time.Time, bool) {
	t := now.Add(d)
	if !dl.at.IsZero() && !dl.at.After(t) && t.Sub(dl.at) < d>>3 {
		return t, false
	}
	dl.at = t
	return t, true
}

// setRead sets c's read deadline to now+d unless dl says it is close enough.
func setRead(c net.Conn, dl *deadline, now time.Time, d time.Duration) {
	if t, ok := dl.need(now, d); ok {
		_ = c.SetReadDeadline(t)
	}
}

// setWrite sets c's write deadline to now+d unless dl says it is close
// enough.
func setWrite(c net.Conn, dl *deadline, now time.Time, d time.Duration) {
	if t, ok := dl.need(now, d); ok {
		_ = c.SetWriteDeadline(t)
	}
}

// aLongTimeAgo is a deadline in the past, used to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// forget makes the next need set the deadline whatever it was, after
// someone else (an interrupt) moved it.
func (dl *deadline) forget() { dl.at = time.Time{} }
