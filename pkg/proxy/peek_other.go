//go:build !unix

package proxy

import "syscall"

// peek cannot probe on this platform: connections are assumed open.
func peek(syscall.RawConn) (open, data bool) { return true, false }

// peekOpen cannot probe on this platform; pooled connections are trusted.
func peekOpen(syscall.RawConn) bool { return true }
