//go:build unix

package proxy

import "syscall"

// peekOpen reports whether an idle connection is still open and silent: a
// non-blocking peek that would block. EOF, an error or unexpected bytes
// mean the connection must not be reused.
func peekOpen(raw syscall.RawConn) bool {
	if raw == nil {
		return true
	}
	open := false
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN
		return true
	})
	return err == nil && open
}
