package main

import (
	"net"

	"github.com/kakehi/kakehi/pkg/proxy"
)

// listenTLS opens the HTTPS listener (nil when addr is empty) and returns
// the port for HTTP→HTTPS redirects: port when set, else the listener's.
func listenTLS(addr string, port int) (net.Listener, int, error) {
	if addr == "" {
		return nil, port, nil
	}
	l, err := proxy.Listen(addr)
	if err != nil {
		return nil, 0, err
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok && port == 0 {
		port = a.Port
	}
	return l, port, nil
}
