package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/pkg/stream"
)

// Connection states, for Shutdown.
const (
	connActive  int32 = iota // reading or serving a request
	connIdle                 // waiting for the first byte of a request
	connClosing              // Shutdown interrupted the idle wait
)

// conn is one client connection, served by one goroutine, one request at
// a time and in order. Between requests it holds no stream and no
// exchange: the buffers are checked out when bytes arrive.
type conn struct {
	srv   *Server
	nc    net.Conn
	raw   syscall.RawConn // nil when nc is not a *net.TCPConn
	tcp   *net.TCPConn    // nc, when it is one (for splice)
	state atomic.Int32

	// immutable after newConn:
	remote string // "ip:port" for the access log
	xff    []byte // client IP for X-Forwarded-For
	port   []byte // local port for X-Forwarded-Port
	proto  string // "http" or "https"

	// TLS (ServeTLS), see tls.go:
	tlsc *tls.Conn        // nc, when it is one
	cert *tls.Certificate // the certificate tlsc's handshake presented

	// owned by the connection goroutine:
	st        *stream.Stream
	ex        *exchange
	fr, fw    int // unread client bytes in st.Front[fr:fw]
	rdl, wdl  deadline
	firstByte time.Time
	clock     time.Time // the connection goroutine's latest time.Now, see tick
	closeConn bool      // close after the current response
	rawErr    error     // result of rawRead
	one       [1]byte   // readIdleTLS's first byte
	readFn    func(fd uintptr) bool

	// the backend connection in use, for onGone (another goroutine):
	cur    atomic.Pointer[bconn]
	upH2C  atomic.Pointer[h1Up] // the h2c exchange in progress
	gone   atomic.Bool
	goneFn func()

	// HTTP/2, see h2conn.go:
	h2       atomic.Pointer[h2Conn] // set while the connection speaks HTTP/2
	h1Served bool                   // a request was read: no HTTP/2 preface any more
	// served is h1Served for other goroutines (Shutdown): a connection that
	// has not sent its first request yet gets firstRequestGrace to send it.
	served atomic.Bool
	// linger asks finish for a lingering close (an error answer was sent
	// while the client may still be sending).
	linger bool

	pump pump
	lr   io.LimitedReader // for splicing response bodies
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, proto: "http", remote: nc.RemoteAddr().String()}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
		c.tcp = tc
	}
	if tc, ok := nc.(*tls.Conn); ok {
		c.proto = "https"
		c.tlsc = tc
	}
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ip := a.IP.String(); ip != "<nil>" {
			c.xff = []byte(ip)
		}
	}
	if c.xff == nil {
		host, _, err := net.SplitHostPort(c.remote)
		if err != nil {
			host = "unknown"
		}
		c.xff = []byte(host)
	}
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.port = strconv.AppendInt(nil, int64(a.Port), 10)
	}
	c.readFn = c.rawRead
	c.tick()
	c.goneFn = c.onGone
	c.pump.done = make(chan struct{}, 1)
	return c
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.finish()
	for c.awaitRequest() {
		if !c.serveRequest() {
			return
		}
	}
}

// finish releases what the connection holds and closes it, lingering
// first when the proxy answered an error while the client may still be
// sending (see lingerClose).
func (c *conn) finish() {
	c.release()
	if c.linger {
		lingerClose(c.nc)
	}
	_ = c.nc.Close()
	c.srv.removeConn(c)
}

// Lingering close bounds: how long and how much of what the client still
// sends is read and discarded after an error answer.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 1 << 20
)

// lingerClose half-closes nc (FIN after the answer) and reads and discards
// what the client still sends, for at most lingerTime and lingerBytes. A
// client that is still writing a request body when the proxy answers it
// with an error (413, 400, 408) then reads that answer instead of getting
// a reset (RFC 9112 §9.6, "tear-down"): closing a socket with unread data
// makes the kernel send RST, which can destroy the answer in flight.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerBytes))
}

// acquire checks a stream out of the pool.
func (c *conn) acquire() error {
	st, err := c.srv.pool.Get()
	if err != nil {
		return err
	}
	c.st = st
	return nil
}

// release returns the stream and the exchange, if held.
func (c *conn) release() {
	if c.st != nil {
		var now time.Time
		if c.st.State().IsOpen() {
			now = time.Now()
		}
		c.st.Release(now)
		c.st = nil
	}
	if c.ex != nil {
		c.ex.meta = c.ex.meta[:0]
		c.srv.exchange.Put(c.ex)
		c.ex = nil
	}
	c.fr, c.fw = 0, 0
}

// awaitRequest makes the first bytes of the next request available in
// st.Front[fr:fw], starting at headRoom. Pipelined bytes already read are
// used first; otherwise the connection waits, holding no buffers, for the
// client to send. It reports false when the connection should close.
func (c *conn) awaitRequest() bool {
	if c.st != nil && c.fr < c.fw {
		if c.fr != headRoom {
			n := copy(c.st.Front[headRoom:], c.st.Front[c.fr:c.fw])
			c.fr, c.fw = headRoom, headRoom+n
		}
		c.firstByte = c.tick()
		return true
	}
	fresh := !c.served.Load()
	if !c.state.CompareAndSwap(connActive, connIdle) || c.srv.shutting.Load() && !fresh {
		return false
	}
	setRead(c.nc, &c.rdl, c.clock, c.srv.opt.IdleTimeout)
	if fresh && c.srv.shutting.Load() {
		_ = c.nc.SetReadDeadline(time.Now().Add(firstRequestGrace))
	}
	err := c.readIdle()
	if !c.state.CompareAndSwap(connIdle, connActive) {
		return false // Shutdown closed the idle connection
	}
	if err != nil {
		if errors.Is(err, stream.ErrPoolExhausted) {
			c.refuse()
		}
		return false
	}
	c.firstByte = c.tick()
	if c.ex == nil {
		c.ex = c.srv.exchange.Get().(*exchange)
	}
	return true
}

// readIdle waits for the client's next bytes and reads them into a stream
// checked out only once they are there.
func (c *conn) readIdle() error {
	if c.raw == nil {
		if c.tlsc != nil {
			return c.readIdleTLS()
		}
		if c.st == nil {
			if err := c.acquire(); err != nil {
				return err
			}
		}
		n, err := c.read(c.st.Front[headRoom:])
		if n > 0 {
			c.fr, c.fw = headRoom, headRoom+n
			return nil
		}
		if err == nil {
			err = io.EOF
		}
		return err
	}
	c.rawErr = nil
	if err := c.raw.Read(c.readFn); err != nil {
		return err
	}
	return c.rawErr
}

// read reads from the client.
func (c *conn) read(p []byte) (int, error) { return c.nc.Read(p) }

// rawRead is the RawConn read callback: it checks out a stream, reads into
// its Front buffer, and gives the stream back when there is nothing to read
// yet, so that an idle connection holds no buffer while the runtime waits.
func (c *conn) rawRead(fd uintptr) bool {
	if c.st == nil {
		if err := c.acquire(); err != nil {
			c.rawErr = err
			return true
		}
	}
	for {
		n, err := syscall.Read(int(fd), c.st.Front[headRoom:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.release()
			return false
		case err != nil:
			c.rawErr = os.NewSyscallError("read", err)
		case n == 0:
			c.rawErr = io.EOF
		default:
			c.fr, c.fw = headRoom, headRoom+n
		}
		return true
	}
}

// tick reads the clock once for the several uses that need about the
// same time (stream times, deadlines, Date), and returns it.
func (c *conn) tick() time.Time {
	c.clock = time.Now()
	return c.clock
}

// firstRequestGrace is how long, during Shutdown, a connection accepted
// before the listener closed may take to send its first request; that
// request is served (with Connection: close) instead of the connection
// being reset under a client that cannot know it should retry.
const firstRequestGrace = time.Second

// closeIfIdle interrupts the idle wait of a connection (Shutdown). A
// connection busy with a request finishes it and then closes; one that has
// not sent its first request yet gets firstRequestGrace to send it.
func (c *conn) closeIfIdle() {
	if h := c.h2.Load(); h != nil {
		h.shutdown() // GOAWAY; the streams in flight finish
		return
	}
	if !c.served.Load() {
		_ = c.nc.SetReadDeadline(time.Now().Add(firstRequestGrace))
		return
	}
	if c.state.CompareAndSwap(connIdle, connClosing) {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// forceClose closes the connection under whatever it is doing (Close).
func (c *conn) forceClose() {
	_ = c.nc.Close()
	if bc := c.cur.Load(); bc != nil {
		_ = bc.nc.Close()
	}
	if u := c.upH2C.Load(); u != nil {
		u.interrupt()
	}
}

// onGone is the stream's OnGone hook: the linked backend left the route
// table and the drain grace is over, so the backend connection is closed
// under the request (a deadline could be moved again by the request's own
// I/O). attempt checks gone after publishing cur, so that one of the two
// always sees the other.
func (c *conn) onGone() {
	c.gone.Store(true)
	if bc := c.cur.Load(); bc != nil {
		_ = bc.nc.Close()
	}
}

// refuse answers a request that arrived when no stream was free: 503 with
// Retry-After, then close. It uses a small buffer of its own since there
// is no stream to borrow one from.
func (c *conn) refuse() {
	b := appendAnswer(make([]byte, 0, 256), answer{
		status:     503,
		detail:     "proxy at capacity",
		retryAfter: c.srv.opt.RetryAfter,
		close:      true,
	}, time.Now())
	c.srv.m.Refused(503, causePoolExhausted) // first: counted once answered
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.opt.BodyIdleTimeout))
	_, _ = c.nc.Write(b)
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
