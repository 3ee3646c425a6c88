package proxy

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/stream"
)

// accessLog collects one JSON line per finished stream in a bounded
// buffer, and a background goroutine writes the buffer in batches. A line
// that does not fit is dropped and counted, so a slow log destination
// never slows requests.
type accessLog struct {
	w     io.Writer
	max   int
	m     *metrics.Proxy
	lines sync.Pool // *[]byte scratch for formatting

	mu      sync.Mutex
	buf     []byte // lines waiting to be written
	dropped uint64 // lines dropped since start

	spare []byte // owned by the writer goroutine
	wake  chan struct{}
}

func newAccessLog(w io.Writer, max int, m *metrics.Proxy) *accessLog {
	l := &accessLog{w: w, max: max, m: m, wake: make(chan struct{}, 1)}
	l.lines.New = func() any { b := make([]byte, 0, 1024); return &b }
	return l
}

// run writes buffered lines until done is closed, then writes what is
// left and returns.
func (l *accessLog) run(done <-chan struct{}) {
	for {
		select {
		case <-l.wake:
			l.flush()
		case <-done:
			l.flush()
			return
		}
	}
}

func (l *accessLog) flush() {
	l.mu.Lock()
	b := l.buf
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if len(b) > 0 {
		_, _ = l.w.Write(b)
	}
	l.spare = b[:0]
}

// Dropped returns how many lines were dropped on a full buffer.
func (l *accessLog) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}

// record formats s as one line and queues it.
func (l *accessLog) record(s *stream.Stream) {
	bp := l.lines.Get().(*[]byte)
	line := appendRecord((*bp)[:0], s)
	l.mu.Lock()
	ok := len(l.buf)+len(line) <= l.max
	if ok {
		l.buf = append(l.buf, line...)
	} else {
		l.dropped++
	}
	l.mu.Unlock()
	*bp = line
	l.lines.Put(bp)
	if !ok {
		l.m.AccessLogDropped(1)
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// appendRecord appends the JSON access-log line of a finished stream.
func appendRecord(b []byte, s *stream.Stream) []byte {
	c, m := &s.Ctx, &s.Metrics
	b = append(b, `{"time":"`...)
	b = appendLogTime(b, m.End)
	b = jsonField(b, "client", c.ClientAddr)
	b = jsonField(b, "method", c.Method)
	b = jsonField(b, "authority", c.Authority)
	b = jsonField(b, "path", c.Path)
	b = jsonField(b, "proto", c.Proto)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(c.Status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, m.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, m.BytesOut, 10)
	b = append(b, `,"duration":`...)
	b = appendSeconds(b, m.End.Sub(m.Start))
	reqEnd, backend := m.End, time.Duration(-1)
	if !m.BackendStart.IsZero() {
		reqEnd = m.BackendStart
		if !m.BackendEnd.IsZero() {
			backend = m.BackendEnd.Sub(m.BackendStart)
		}
	}
	b = append(b, `,"request_duration":`...)
	b = appendSeconds(b, reqEnd.Sub(m.Start))
	if backend >= 0 {
		b = append(b, `,"backend_duration":`...)
		b = appendSeconds(b, backend)
	}
	if be := s.LastBackend(); be != nil {
		b = append(b, `,"backend":`...)
		b = strconv.AppendUint(b, uint64(be.Token()), 10)
		b = append(b, `,"backend_addr":"`...)
		b = appendJSONString(b, be.Addr())
		b = jsonField(b, "pod", be.Pod())
		b = append(b, '"')
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(s.Attempts()), 10)
	b = append(b, `,"namespace":"`...)
	b = appendJSONString(b, c.Namespace)
	b = jsonField(b, "ingress", c.Ingress)
	b = jsonField(b, "service", c.Service)
	b = jsonField(b, "request_id", c.RequestID)
	b = jsonField(b, "user_agent", c.UserAgent)
	b = jsonField(b, "cause", c.Cause)
	return append(b, "\"}\n"...)
}

// jsonField closes the previous string value and appends ,"name":"value
// (the closing quote is left for the next field).
func jsonField(b []byte, name, value string) []byte {
	b = append(b, `","`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	return appendJSONString(b, value)
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
}

// logSecond caches the formatted UTC second of access-log times.
type logSecond struct {
	sec int64
	b   [19]byte // 2006-01-02T15:04:05
}

var logSeconds atomic.Pointer[logSecond]

// appendLogTime appends t as RFC 3339 UTC with microseconds, formatting
// the date and time of day at most once per second.
func appendLogTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	ls := logSeconds.Load()
	if ls == nil || ls.sec != sec {
		ls = &logSecond{sec: sec}
		t.UTC().AppendFormat(ls.b[:0], "2006-01-02T15:04:05")
		logSeconds.Store(ls)
	}
	b = append(b, ls.b[:]...)
	us := t.Nanosecond() / 1000
	b = append(b, '.',
		byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10), 'Z')
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s escaped for a JSON string body: quotes,
// backslashes and control bytes escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	clean := 0
	for clean < len(s) {
		c := s[clean]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			break
		}
		clean++
	}
	b = append(b, s[:clean]...)
	for i := clean; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}
