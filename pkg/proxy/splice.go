package proxy

import (
	"errors"
	"io"
	"net"
	"time"
)

// spliceStep bounds one splice call so that the idle deadlines move with
// progress: a transfer fails only if a step of this size stalls for the
// body idle timeout.
const spliceStep = 256 << 10

// canSplice reports whether n body bytes from src to dst should move in the
// kernel (splice(2) through a pipe, via TCPConn.ReadFrom) rather than
// through the stream's buffer: both ends are TCP and the body is larger
// than the buffer.
func canSplice(dst, src *net.TCPConn, n int64, bufLen int) bool {
	return dst != nil && src != nil && n > int64(bufLen)
}

// spliceN copies exactly n bytes from src to dst. It returns the bytes
// copied and io.ErrUnexpectedEOF when src ended first, or the copy's
// error, which does not say which side failed.
func spliceN(dst, src *net.TCPConn, lr *io.LimitedReader, n int64, idle time.Duration, rdl, wdl *deadline) (int64, error) {
	var done int64
	defer func() { lr.R = nil }()
	for done < n {
		step := min(n-done, spliceStep)
		now := time.Now()
		setRead(src, rdl, now, idle)
		setWrite(dst, wdl, now, idle)
		lr.R, lr.N = src, step
		k, err := dst.ReadFrom(lr)
		done += k
		if err != nil {
			return done, err
		}
		if k < step {
			return done, io.ErrUnexpectedEOF
		}
	}
	return done, nil
}

// spliceResponseFailed classifies a failed response-body splice: the
// client gone, the backend short or stalled.
func (c *conn) spliceResponseFailed(err error) error {
	if open, _ := peek(c.raw); !open {
		return errClientGone
	}
	if isTimeout(err) && !c.gone.Load() && !errors.Is(err, io.ErrUnexpectedEOF) {
		return errBackendStalled
	}
	return errBackendBody
}
