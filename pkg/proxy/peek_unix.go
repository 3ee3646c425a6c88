//go:build unix

package proxy

import "syscall"

// peek probes a connection without blocking or consuming: open is false
// after EOF or an error, data is true when bytes wait to be read.
func peek(raw syscall.RawConn) (open, data bool) {
	if raw == nil {
		return true, false
	}
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN:
			open = true
		case err == nil && n > 0:
			open, data = true, true
		}
		return true
	})
	return open && err == nil, data
}

// peekOpen reports whether an idle connection is still open and silent:
// EOF, an error or unexpected bytes mean it must not be reused.
func peekOpen(raw syscall.RawConn) bool {
	open, data := peek(raw)
	return open && !data
}
