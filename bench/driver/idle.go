package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// idleResult is what the idle scenario measures.
type idleResult struct {
	Wanted    int      // connections asked for
	Answered  int      // connections whose one request got a 200
	OpenAfter int      // still open when memory was read
	BaseKiB   int64    // proxy RSS before
	AfterKiB  int64    // proxy RSS with the connections idle
	Failures  []string // the first few errors
}

// KiBPerConn is the proxy's RSS growth per idle connection.
func (r idleResult) KiBPerConn() float64 {
	if r.Answered == 0 {
		return 0
	}
	return float64(r.AfterKiB-r.BaseKiB) / float64(r.Answered)
}

// idleDialers bounds the connections being opened at once, well under the
// listen backlog.
const idleDialers = 64

// runIdle measures the proxy's memory per idle keep-alive client
// connection: RSS of pids before, then n connections each sending one
// request and reading its answer so that it sits idle in keep-alive, a
// pause for the proxy to settle, RSS again. All connections are closed
// before it returns.
func runIdle(ctx context.Context, addr string, n int, pids []int, settle time.Duration) (idleResult, error) {
	res := idleResult{Wanted: n}
	base, err := rssKiB(pids)
	if err != nil {
		return res, err
	}
	res.BaseKiB = base
	conns, failures := openIdle(ctx, addr, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	res.Answered, res.Failures = len(conns), failures
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(settle):
	}
	if res.AfterKiB, err = rssKiB(pids); err != nil {
		return res, err
	}
	for _, c := range conns {
		if alive(c) {
			res.OpenAfter++
		}
	}
	return res, nil
}

// openIdle opens up to n connections to addr, idleDialers at a time; on
// each it sends GET /small and reads the whole answer. It returns the
// connections that got a 200 and the first errors of the others.
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, []string) {
	var (
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		failures []string
		wg       sync.WaitGroup
	)
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	req := []byte("GET /small HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: kakehi-bench-idle\r\n\r\n")
	for w := 0; w < idleDialers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for range next {
				if ctx.Err() != nil {
					return
				}
				c, err := oneIdle(ctx, addr, req, br)
				mu.Lock()
				if err != nil {
					if len(failures) < 5 {
						failures = append(failures, err.Error())
					}
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns, failures
}

// oneIdle opens one connection and completes one request on it.
func oneIdle(ctx context.Context, addr string, req []byte, br *bufio.Reader) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br.Reset(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	if err == nil && br.Buffered() > 0 {
		err = errors.New("unexpected bytes after the response")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// alive reports whether the peer has not closed c, without blocking and
// without consuming anything.
func alive(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n > 0 || errors.Is(err, syscall.EAGAIN)
		return true
	})
	return open
}
