package proxy

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Options are the proxy's timeouts, limits and pool sizes. Start from
// DefaultOptions; a zero field means "use the default" except where noted.
type Options struct {
	// ReadHeaderTimeout bounds the time from the first byte of a request to
	// the end of its head. A partial head at the deadline is answered 408.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive client connection may wait
	// for the first byte of its next request; it is then closed silently.
	IdleTimeout time.Duration
	// BackendConnectTimeout bounds a dial to a backend endpoint; a timeout
	// is answered 504 and not retried.
	BackendConnectTimeout time.Duration
	// BackendResponseTimeout bounds the time from sending a request to the
	// backend's response head; a timeout is answered 504.
	BackendResponseTimeout time.Duration
	// BodyIdleTimeout bounds each wait for progress while a body streams,
	// in either direction, and each write to the client. A request body
	// that stalls is answered 408; a response body that stalls is cut off.
	BodyIdleTimeout time.Duration
	// TunnelIdleTimeout closes an Upgrade tunnel (WebSocket) after this long
	// without a byte in either direction.
	TunnelIdleTimeout time.Duration
	// BackendIdleTimeout closes pooled keep-alive backend connections idle
	// for longer than this.
	BackendIdleTimeout time.Duration
	// DrainGrace is how long requests linked to a backend that left the
	// route table may run on before they are cut off.
	DrainGrace time.Duration

	// MaxHeaderBytes bounds a request head (request line and fields); more
	// is answered 431 (414 if the request line alone is too long). It must
	// leave headRoom bytes of BufferSize free for the forwarded fields.
	MaxHeaderBytes int
	// MaxHeaderCount bounds the field lines of a request head (431) and of
	// a response head (502), trailers included.
	MaxHeaderCount int
	// MaxRequestBody bounds a request body in bytes (413); 0 means no limit.
	MaxRequestBody int64
	// MaxStreams bounds the requests in progress at once; each holds two
	// buffers of BufferSize. A request arriving when all are taken is
	// answered 503 with Retry-After.
	MaxStreams int
	// BufferSize is the size of each of a stream's two buffers.
	BufferSize int
	// MaxIdleBackendConnsPerEndpoint bounds the idle keep-alive connections
	// kept per backend endpoint (token).
	MaxIdleBackendConnsPerEndpoint int
	// MaxAttempts bounds the backend attempts per request (first try plus
	// safe retries); when all fail to connect the answer is 503.
	MaxAttempts int
	// RetryAfter is the Retry-After value, in seconds, sent with 503s that
	// say the proxy is out of capacity.
	RetryAfter int
	// TrustForwardedHeaders keeps X-Forwarded-* headers sent by the client
	// (the proxy sits behind another trusted proxy) and appends its own
	// X-Forwarded-For entry. When false, the proxy removes them and sets
	// its own.
	TrustForwardedHeaders bool
	// AccessLogBuffer bounds the access-log bytes waiting to be written;
	// lines that do not fit are dropped and counted.
	AccessLogBuffer int

	// H2MaxConcurrentStreams is the HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS:
	// the requests one client connection may have in progress, and so the
	// most it sends to backends at once.
	H2MaxConcurrentStreams int
	// H2InitialWindowSize is the HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE: the
	// request body bytes buffered per stream. At most BufferSize (the
	// stream's Front buffer holds them); 0 means BufferSize.
	H2InitialWindowSize int
	// H2MaxFrameSize is the HTTP/2 SETTINGS_MAX_FRAME_SIZE the proxy reads.
	H2MaxFrameSize int
	// H2MaxHeaderListSize is the HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: a
	// request header list (RFC 9113 §6.5.2 size) above it is answered 431.
	H2MaxHeaderListSize int
}

// headRoom is the space kept free at the front of the request buffer so
// that the forwarded head can grow (X-Forwarded-*, X-Request-Id) in place.
const headRoom = 640

// DefaultOptions returns the defaults that RegisterFlags shows.
func DefaultOptions() Options {
	return Options{
		ReadHeaderTimeout:              10 * time.Second,
		IdleTimeout:                    60 * time.Second,
		BackendConnectTimeout:          5 * time.Second,
		BackendResponseTimeout:         60 * time.Second,
		BodyIdleTimeout:                60 * time.Second,
		TunnelIdleTimeout:              time.Hour,
		BackendIdleTimeout:             30 * time.Second,
		DrainGrace:                     10 * time.Second,
		MaxHeaderBytes:                 15 << 10,
		MaxHeaderCount:                 100,
		MaxRequestBody:                 1 << 30,
		MaxStreams:                     10000,
		BufferSize:                     16 << 10,
		MaxIdleBackendConnsPerEndpoint: 128,
		MaxAttempts:                    3,
		RetryAfter:                     1,
		AccessLogBuffer:                1 << 20,
		H2MaxConcurrentStreams:         128,
		H2MaxFrameSize:                 16384,
		H2MaxHeaderListSize:            16 << 10,
	}
}

// RegisterFlags registers every option on fs as a --proxy-* flag whose
// default is the option's current value.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.ReadHeaderTimeout, "proxy-read-header-timeout", o.ReadHeaderTimeout, "time allowed from the first byte of a request to the end of its head (408 after)")
	fs.DurationVar(&o.IdleTimeout, "proxy-idle-timeout", o.IdleTimeout, "how long an idle keep-alive client connection is kept open")
	fs.DurationVar(&o.BackendConnectTimeout, "proxy-backend-connect-timeout", o.BackendConnectTimeout, "time allowed to connect to a backend endpoint (504 after)")
	fs.DurationVar(&o.BackendResponseTimeout, "proxy-backend-response-timeout", o.BackendResponseTimeout, "time allowed from sending a request to the backend's response head (504 after)")
	fs.DurationVar(&o.BodyIdleTimeout, "proxy-body-idle-timeout", o.BodyIdleTimeout, "longest wait for progress while a request or response body streams, and for each write to the client")
	fs.DurationVar(&o.TunnelIdleTimeout, "proxy-tunnel-idle-timeout", o.TunnelIdleTimeout, "close an Upgrade (WebSocket) tunnel after this long without traffic")
	fs.DurationVar(&o.BackendIdleTimeout, "proxy-backend-idle-timeout", o.BackendIdleTimeout, "close pooled keep-alive backend connections idle for longer than this")
	fs.DurationVar(&o.DrainGrace, "proxy-drain-grace", o.DrainGrace, "how long requests to an endpoint that left the route table may continue before they are cut off")
	fs.IntVar(&o.MaxHeaderBytes, "proxy-max-header-bytes", o.MaxHeaderBytes, "largest request head in bytes (431 above; must be at most --proxy-buffer-size minus 640)")
	fs.IntVar(&o.MaxHeaderCount, "proxy-max-header-count", o.MaxHeaderCount, "most header fields in a request head (431 above) or response head (502 above)")
	fs.Int64Var(&o.MaxRequestBody, "proxy-max-request-body", o.MaxRequestBody, "largest request body in bytes (413 above); 0 for no limit")
	fs.IntVar(&o.MaxStreams, "proxy-max-streams", o.MaxStreams, "most requests in progress at once, each holding two buffers (503 with Retry-After above)")
	fs.IntVar(&o.BufferSize, "proxy-buffer-size", o.BufferSize, "size in bytes of each of a request's two buffers")
	fs.IntVar(&o.MaxIdleBackendConnsPerEndpoint, "proxy-max-idle-backend-conns", o.MaxIdleBackendConnsPerEndpoint, "idle keep-alive connections kept per backend endpoint")
	fs.IntVar(&o.MaxAttempts, "proxy-max-attempts", o.MaxAttempts, "backend attempts per request, first try included; retries happen only when no request byte reached a backend")
	fs.IntVar(&o.RetryAfter, "proxy-retry-after", o.RetryAfter, "Retry-After seconds sent with 503 answers given when the proxy is out of capacity")
	fs.BoolVar(&o.TrustForwardedHeaders, "proxy-trust-forwarded-headers", o.TrustForwardedHeaders, "keep X-Forwarded-* headers from clients (only behind a trusted proxy) and append to X-Forwarded-For")
	fs.IntVar(&o.AccessLogBuffer, "proxy-access-log-buffer", o.AccessLogBuffer, "bytes of access-log lines buffered for the writer; lines beyond are dropped and counted")
	fs.IntVar(&o.H2MaxConcurrentStreams, "proxy-h2-max-concurrent-streams", o.H2MaxConcurrentStreams, "HTTP/2 streams in progress per client connection (SETTINGS_MAX_CONCURRENT_STREAMS)")
	fs.IntVar(&o.H2InitialWindowSize, "proxy-h2-initial-window-size", o.H2InitialWindowSize, "HTTP/2 request body bytes buffered per stream (SETTINGS_INITIAL_WINDOW_SIZE); 0 for --proxy-buffer-size, at most that")
	fs.IntVar(&o.H2MaxFrameSize, "proxy-h2-max-frame-size", o.H2MaxFrameSize, "largest HTTP/2 frame payload accepted (SETTINGS_MAX_FRAME_SIZE, 16384 to 16777215)")
	fs.IntVar(&o.H2MaxHeaderListSize, "proxy-h2-max-header-list-size", o.H2MaxHeaderListSize, "largest HTTP/2 request header list (SETTINGS_MAX_HEADER_LIST_SIZE; 431 above)")
}

// withDefaults returns o with zero fields set to their defaults, or an
// error naming the first inconsistent setting.
func (o Options) withDefaults() (Options, error) {
	d := DefaultOptions()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur(&o.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDur(&o.IdleTimeout, d.IdleTimeout)
	setDur(&o.BackendConnectTimeout, d.BackendConnectTimeout)
	setDur(&o.BackendResponseTimeout, d.BackendResponseTimeout)
	setDur(&o.BodyIdleTimeout, d.BodyIdleTimeout)
	setDur(&o.TunnelIdleTimeout, d.TunnelIdleTimeout)
	setDur(&o.BackendIdleTimeout, d.BackendIdleTimeout)
	if o.DrainGrace < 0 {
		o.DrainGrace = 0
	}
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt(&o.BufferSize, d.BufferSize)
	setInt(&o.MaxHeaderBytes, min(d.MaxHeaderBytes, o.BufferSize-headRoom))
	setInt(&o.MaxHeaderCount, d.MaxHeaderCount)
	setInt(&o.MaxStreams, d.MaxStreams)
	setInt(&o.MaxIdleBackendConnsPerEndpoint, d.MaxIdleBackendConnsPerEndpoint)
	setInt(&o.MaxAttempts, d.MaxAttempts)
	setInt(&o.RetryAfter, d.RetryAfter)
	setInt(&o.AccessLogBuffer, d.AccessLogBuffer)
	if o.MaxRequestBody < 0 {
		o.MaxRequestBody = 0
	}
	if err := o.h2Defaults(d); err != nil {
		return o, err
	}
	switch {
	case o.BufferSize < 4<<10 || o.BufferSize > 1<<20:
		return o, fmt.Errorf("proxy: buffer size %d must be between 4096 and 1048576", o.BufferSize)
	case o.MaxHeaderBytes > o.BufferSize-headRoom:
		return o, fmt.Errorf("proxy: max header bytes %d must be at most buffer size %d minus %d", o.MaxHeaderBytes, o.BufferSize, headRoom)
	case o.MaxHeaderCount > maxFields:
		return o, fmt.Errorf("proxy: max header count %d must be at most %d", o.MaxHeaderCount, maxFields)
	case o.MaxAttempts > 255:
		return o, errors.New("proxy: max attempts must be at most 255")
	}
	return o, nil
}
