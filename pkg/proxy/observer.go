package proxy

import (
	"time"

	"github.com/kakehi/kakehi/pkg/stream"
)

// observer turns stream ends into metrics and access-log lines. The stream
// package calls Opened and Closed exactly once per request that left Idle,
// so the active-requests gauge can never go negative.
type observer struct{ s *Server }

// Opened counts the request in the active-requests gauge.
func (o observer) Opened(*stream.Stream) { o.s.m.RequestOpened() }

// Closed records the finished request's metrics and access-log line.
func (o observer) Closed(st *stream.Stream) {
	m := &st.Metrics
	backend := time.Duration(-1)
	if !m.BackendEnd.IsZero() {
		backend = m.BackendEnd.Sub(m.BackendStart)
	}
	o.s.m.Error(st.Ctx.Cause)
	if o.s.log != nil {
		o.s.log.record(st)
	}
	// Last, so that a gauge at 0 means every other record is made.
	o.s.m.RequestClosed(st.Ctx.Status, m.End.Sub(m.Start), backend, m.BytesIn, m.BytesOut)
}
