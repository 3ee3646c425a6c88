// Package metrics holds every Prometheus metric of Kakehi: the names as
// constants, and one struct of collectors per subsystem. The proxy records
// the metrics in this file; docs/metrics.md lists every metric and label.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the proxy's metrics.
const (
	RequestsTotal          = "kakehi_requests_total"
	RequestDurationSeconds = "kakehi_request_duration_seconds"
	BackendHeaderSeconds   = "kakehi_backend_response_header_seconds"
	ActiveRequests         = "kakehi_active_requests"
	RequestBodyBytesTotal  = "kakehi_request_body_bytes_total"
	ResponseBodyBytesTotal = "kakehi_response_body_bytes_total"
	BackendRetriesTotal    = "kakehi_backend_retries_total"
	ProxyErrorsTotal       = "kakehi_proxy_errors_total"
	BackendConnectsTotal   = "kakehi_backend_connects_total"
	BackendConnections     = "kakehi_backend_connections"
	BackendIdleConnections = "kakehi_backend_idle_connections"
	ClientConnections      = "kakehi_client_connections"
	StreamsInUse           = "kakehi_streams_in_use"
	StreamsCapacity        = "kakehi_streams_capacity"
	AccessLogDroppedTotal  = "kakehi_access_log_dropped_total"
	TLSHandshakeErrors     = "kakehi_tls_handshake_errors_total"
)

// Label names of the proxy's metrics.
const (
	LabelCode   = "code"   // HTTP status code, "200"
	LabelClass  = "class"  // status class, "2xx"
	LabelCause  = "cause"  // one of the Cause constants
	LabelResult = "result" // one of the Connect constants
)

// Values of the cause label of kakehi_proxy_errors_total: why the proxy
// answered a request by itself or cut it short.
const (
	CauseBadRequest         = "bad_request"           // 400: malformed or ambiguous request
	CauseHeaderTooLarge     = "header_too_large"      // 431 (or 414 for the request line)
	CauseBodyTooLarge       = "body_too_large"        // 413
	CauseNotImplemented     = "not_implemented"       // 501: transfer coding or method not supported
	CauseExpectation        = "expectation_failed"    // 417
	CauseVersion            = "version_not_supported" // 505
	CauseClientTimeout      = "client_timeout"        // 408: head or body not received in time
	CauseClientAborted      = "client_aborted"        // the client went away mid-request
	CauseNoRoute            = "no_route"              // 404
	CauseNoBackend          = "no_backend"            // 503: the cluster has no live endpoint
	CausePoolExhausted      = "pool_exhausted"        // 503: no stream (buffers) free
	CauseRetriesExhausted   = "retries_exhausted"     // 503: every attempt failed to connect
	CauseConnectTimeout     = "connect_timeout"       // 504: backend connect timed out
	CauseBackendTimeout     = "backend_timeout"       // 504: no response head in time
	CauseBackendError       = "backend_error"         // 502: the backend took the request and failed
	CauseBackendAborted     = "backend_aborted"       // the backend failed after the response started
	CauseBackendBodyTimeout = "backend_body_timeout"  // the response body stalled
	CauseBackendGone        = "backend_gone"          // the endpoint left the table and was drained
	CauseMisdirected        = "misdirected"           // 421: the connection's certificate does not cover the host
)

// Values of the result label of kakehi_backend_connects_total.
const (
	ConnectOK      = "ok"
	ConnectError   = "error"
	ConnectTimeout = "timeout"
)

// Causes lists every cause value, for documentation and pre-registration.
var Causes = []string{
	CauseBadRequest, CauseHeaderTooLarge, CauseBodyTooLarge, CauseNotImplemented,
	CauseExpectation, CauseVersion, CauseClientTimeout, CauseClientAborted,
	CauseNoRoute, CauseNoBackend, CausePoolExhausted, CauseRetriesExhausted,
	CauseConnectTimeout, CauseBackendTimeout, CauseBackendError, CauseBackendAborted,
	CauseBackendBodyTimeout, CauseBackendGone, CauseMisdirected,
}

// ProxySources are the proxy's own counts that gauges read at scrape time.
// A nil function reads as 0.
type ProxySources struct {
	StreamsInUse     func() int
	StreamsCapacity  func() int
	ClientConns      func() int
	BackendConns     func() int
	BackendIdleConns func() int
}

// Proxy holds the proxy's collectors. Every method is safe for concurrent
// use and does nothing on a nil *Proxy, so the proxy can run without
// metrics. Only pkg/proxy records these metrics.
type Proxy struct {
	requests     *prometheus.CounterVec
	duration     prometheus.Histogram
	backendTime  prometheus.Histogram
	active       prometheus.Gauge
	reqBytes     prometheus.Counter
	respBytes    prometheus.Counter
	retries      prometheus.Counter
	errors       *prometheus.CounterVec
	connects     *prometheus.CounterVec
	logDropped   prometheus.Counter
	tlsFailed    prometheus.Counter
	gaugeFuncs   []prometheus.Collector
	sources      atomic.Pointer[ProxySources]
	codeMu       sync.Mutex
	codes        [600]atomic.Pointer[prometheus.Counter]
	otherCode    prometheus.Counter
	connectCache [3]prometheus.Counter
}

// latencyBuckets suit a proxy: from half a millisecond to a minute.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewProxy returns the proxy's collectors, unregistered.
func NewProxy() *Proxy {
	p := &Proxy{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsTotal,
			Help: "Requests answered by the proxy (by a backend or by the proxy itself), by status code and class.",
		}, []string{LabelCode, LabelClass}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    RequestDurationSeconds,
			Help:    "Time from the first byte of a request to the end of its response.",
			Buckets: latencyBuckets,
		}),
		backendTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    BackendHeaderSeconds,
			Help:    "Time from the first backend attempt of a request to the backend's response head.",
			Buckets: latencyBuckets,
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: ActiveRequests,
			Help: "Requests in progress (counted once per request, whatever ends it).",
		}),
		reqBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: RequestBodyBytesTotal,
			Help: "Request body bytes read from clients (as framed on the wire).",
		}),
		respBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: ResponseBodyBytesTotal,
			Help: "Response body bytes written to clients (as framed on the wire).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: BackendRetriesTotal,
			Help: "Requests sent again to a backend after a failure that was safe to retry.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ProxyErrorsTotal,
			Help: "Requests that the proxy answered by itself or cut short, by cause.",
		}, []string{LabelCause}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: BackendConnectsTotal,
			Help: "New connections dialled to backends, by result (ok, error, timeout).",
		}, []string{LabelResult}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: AccessLogDroppedTotal,
			Help: "Access-log lines dropped because the log buffer was full.",
		}),
		tlsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: TLSHandshakeErrors,
			Help: "TLS handshakes with clients that failed or timed out.",
		}),
	}
	for _, c := range Causes {
		p.errors.WithLabelValues(c)
	}
	for i, r := range []string{ConnectOK, ConnectError, ConnectTimeout} {
		p.connectCache[i] = p.connects.WithLabelValues(r)
	}
	p.otherCode = p.requests.WithLabelValues("other", "other")
	p.sources.Store(&ProxySources{})
	p.gaugeFuncs = []prometheus.Collector{
		p.gaugeFunc(StreamsInUse, "Streams (request slots with their two buffers) checked out of the pool.",
			func(s *ProxySources) float64 { return callInt(s.StreamsInUse) }),
		p.gaugeFunc(StreamsCapacity, "Maximum streams in use at once (--proxy-max-streams).",
			func(s *ProxySources) float64 { return callInt(s.StreamsCapacity) }),
		p.gaugeFunc(ClientConnections, "Open client connections.",
			func(s *ProxySources) float64 { return callInt(s.ClientConns) }),
		p.gaugeFunc(BackendConnections, "Open backend connections, busy and idle: HTTP/1.1 and h2c (HTTP/2) ones.",
			func(s *ProxySources) float64 { return callInt(s.BackendConns) }),
		p.gaugeFunc(BackendIdleConnections, "Idle keep-alive backend connections held in the pools.",
			func(s *ProxySources) float64 { return callInt(s.BackendIdleConns) }),
	}
	return p
}

func callInt(f func() int) float64 {
	if f == nil {
		return 0
	}
	return float64(f())
}

func (p *Proxy) gaugeFunc(name, help string, f func(*ProxySources) float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
		func() float64 { return f(p.sources.Load()) })
}

// Register registers every collector on r.
func (p *Proxy) Register(r prometheus.Registerer) error {
	cs := []prometheus.Collector{p.requests, p.duration, p.backendTime, p.active, p.reqBytes,
		p.respBytes, p.retries, p.errors, p.connects, p.logDropped, p.tlsFailed}
	for _, c := range append(cs, p.gaugeFuncs...) {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// SetSources points the scrape-time gauges at the proxy's counts.
func (p *Proxy) SetSources(s ProxySources) {
	if p != nil {
		p.sources.Store(&s)
	}
}

// RequestOpened adds one to the active-requests gauge. The proxy calls it
// exactly once per request, paired with one RequestClosed.
func (p *Proxy) RequestOpened() {
	if p != nil {
		p.active.Inc()
	}
}

// RequestClosed records a finished request: it takes one from the active
// gauge, counts the status code, observes the durations (backend < 0 means
// no backend answered) and adds the body bytes.
func (p *Proxy) RequestClosed(code int, total, backend time.Duration, bytesIn, bytesOut int64) {
	if p == nil {
		return
	}
	p.codeCounter(code).Inc()
	p.duration.Observe(total.Seconds())
	if backend >= 0 {
		p.backendTime.Observe(backend.Seconds())
	}
	if bytesIn > 0 {
		p.reqBytes.Add(float64(bytesIn))
	}
	if bytesOut > 0 {
		p.respBytes.Add(float64(bytesOut))
	}
	p.active.Dec() // last: a gauge at 0 means the request is fully recorded
}

// Refused counts a request answered before it could take a stream (the
// stream pool was full): its status code and cause, without touching the
// active gauge.
func (p *Proxy) Refused(code int, cause string) {
	if p == nil {
		return
	}
	p.codeCounter(code).Inc()
	p.Error(cause)
}

var classes = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (p *Proxy) codeCounter(code int) prometheus.Counter {
	if code < 100 || code >= len(p.codes) {
		return p.otherCode
	}
	if c := p.codes[code].Load(); c != nil {
		return *c
	}
	p.codeMu.Lock()
	defer p.codeMu.Unlock()
	if c := p.codes[code].Load(); c != nil {
		return *c
	}
	c := p.requests.WithLabelValues(strconv.Itoa(code), classes[code/100])
	p.codes[code].Store(&c)
	return c
}

// Retry counts one retried backend attempt.
func (p *Proxy) Retry() {
	if p != nil {
		p.retries.Inc()
	}
}

// Error counts one request ended by cause (one of the Cause constants).
func (p *Proxy) Error(cause string) {
	if p != nil && cause != "" {
		p.errors.WithLabelValues(cause).Inc()
	}
}

// Connect counts one backend dial by result (ConnectOK, ConnectError or
// ConnectTimeout).
func (p *Proxy) Connect(result string) {
	if p == nil {
		return
	}
	switch result {
	case ConnectOK:
		p.connectCache[0].Inc()
	case ConnectError:
		p.connectCache[1].Inc()
	default:
		p.connectCache[2].Inc()
	}
}

// AccessLogDropped counts n access-log lines dropped on a full buffer.
func (p *Proxy) AccessLogDropped(n int) {
	if p != nil && n > 0 {
		p.logDropped.Add(float64(n))
	}
}

// TLSHandshakeFailed counts one failed or timed-out client TLS handshake.
func (p *Proxy) TLSHandshakeFailed() {
	if p != nil {
		p.tlsFailed.Inc()
	}
}
