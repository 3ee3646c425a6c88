package stream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/stream"
)

// op is one step of a scripted request, applied to one stream.
type op struct {
	name string
	do   func(e *env, s *stream.Stream) error
}

var (
	opOpen    = op{"Open", func(e *env, s *stream.Stream) error { return s.Open(t0) }}
	opLink0   = op{"Link0", func(e *env, s *stream.Stream) error { return s.Link(e.bs[0], t0) }}
	opLink1   = op{"Link1", func(e *env, s *stream.Stream) error { return s.Link(e.bs[1], t0) }}
	opRelink  = op{"Relink", func(e *env, s *stream.Stream) error { return s.Relink() }}
	opUnlink  = op{"Unlink", func(e *env, s *stream.Stream) error { return s.Unlink() }}
	opFinish  = op{"Finish", func(e *env, s *stream.Stream) error { s.Finish(t0); return nil }}
	opRelease = op{"Release", func(e *env, s *stream.Stream) error { s.Release(t0); return nil }}
)

func TestObserverSeesEachRequestThatLeftIdleExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ops      []op
		requests int // requests that left Idle
	}{
		{"never opened, released", []op{opRelease}, 0},
		{"never opened, finished twice", []op{opFinish, opFinish, opRelease}, 0},
		{"served", []op{opOpen, opLink0, opUnlink, opFinish, opRelease}, 1},
		{"finished while linked", []op{opOpen, opLink0, opFinish, opRelease}, 1},
		{"finished twice", []op{opOpen, opLink0, opUnlink, opFinish, opFinish, opRelease}, 1},
		{"released while waiting for a backend", []op{opOpen, opRelease}, 1},
		{"released while linked", []op{opOpen, opLink1, opRelease}, 1},
		{"released while unlinked", []op{opOpen, opUnlink, opRelease}, 1},
		{"retries count once", []op{opOpen, opLink0, opRelink, opLink1, opRelink, opLink0, opUnlink, opFinish, opRelease}, 1},
		{"answered before the head was parsed (400, 408)", []op{opUnlink, opFinish, opRelease}, 1},
		{"keep-alive: three requests", []op{opOpen, opLink0, opFinish, opOpen, opUnlink, opFinish, opUnlink, opFinish, opRelease}, 3},
		{"keep-alive: idle close after a request", []op{opOpen, opLink0, opFinish, opFinish, opRelease}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 2, stream.Options{})
			s := e.get(t)
			for _, o := range tc.ops {
				must(t, s, o.do(e, s))
				if active, _, _, err := e.gauge.snapshot(); err != nil || active != boolInt(s.Counted()) {
					t.Fatalf("after %s: gauge %d with counted=%v (%v)", o.name, active, s.Counted(), err)
				}
			}
			e.settled(t, tc.requests)
		})
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func TestClosedSeesTheFinalRecordThenFinishClearsIt(t *testing.T) {
	e := newEnv(t, 1, stream.Options{})
	var got stream.Context
	var gotMetrics stream.Metrics
	e.gauge.onClose = func(s *stream.Stream) { got, gotMetrics = s.Ctx, s.Metrics }
	s := e.get(t)
	start, linked, end := t0, t0.Add(time.Millisecond), t0.Add(5*time.Millisecond)
	must(t, s, s.Open(start))
	s.Ctx = stream.Context{Method: "GET", Authority: "foo.com", Path: "/x", Status: 200}
	must(t, s, s.Link(e.bs[0], linked))
	must(t, s, s.Relink())
	must(t, s, s.Link(e.bs[0], linked.Add(time.Second))) // a retry keeps BackendStart
	s.Metrics.BytesOut = 42
	s.Finish(end)
	check(t, s)
	if got.Path != "/x" || got.Status != 200 {
		t.Errorf("Closed saw Ctx %+v", got)
	}
	if !gotMetrics.Start.Equal(start) || !gotMetrics.BackendStart.Equal(linked) || !gotMetrics.End.Equal(end) || gotMetrics.BytesOut != 42 {
		t.Errorf("Closed saw Metrics %+v", gotMetrics)
	}
	if s.Ctx != (stream.Context{}) || s.Metrics != (stream.Metrics{}) || s.OnGone != nil || s.LastBackend() != nil {
		t.Errorf("Finish left Ctx %+v Metrics %+v OnGone set=%v", s.Ctx, s.Metrics, s.OnGone != nil)
	}
	s.Release(end)
	e.settled(t, 1)
}

func TestLinkRefusesAfterMaxAttempts(t *testing.T) {
	for _, tc := range []struct {
		opt, want int
	}{{0, 3}, {1, 1}, {5, 5}, {1000, 255}} {
		e := newEnv(t, 2, stream.Options{MaxAttempts: tc.opt})
		if e.pool.MaxAttempts() != tc.want {
			t.Fatalf("MaxAttempts(%d) = %d, want %d", tc.opt, e.pool.MaxAttempts(), tc.want)
		}
		s := e.get(t)
		for req := 0; req < 2; req++ { // Finish resets attempts for the next request
			must(t, s, s.Open(t0))
			for i := 1; i <= tc.want; i++ {
				must(t, s, s.Link(e.bs[i%2], t0))
				if s.Attempts() != i {
					t.Fatalf("after link %d: Attempts = %d", i, s.Attempts())
				}
				must(t, s, s.Relink())
			}
			err := s.Link(e.bs[0], t0)
			if !errors.Is(err, stream.ErrAttemptsExhausted) {
				t.Fatalf("MaxAttempts %d: link %d: err = %v, want ErrAttemptsExhausted", tc.want, tc.want+1, err)
			}
			check(t, s)
			if s.State() != stream.Link || s.Attempts() != tc.want || s.Backend() != nil {
				t.Fatalf("after refusal: state %s attempts %d backend %v", s.State(), s.Attempts(), s.Backend())
			}
			must(t, s, s.Unlink()) // the proxy answers 503
			s.Finish(t0)
			check(t, s)
			if s.Attempts() != 0 {
				t.Fatalf("Finish left Attempts = %d", s.Attempts())
			}
		}
		s.Release(t0)
		e.settled(t, 2)
	}
}

func TestRelinkKeepsLastBackendForAvoid(t *testing.T) {
	e := newEnv(t, 2, stream.Options{})
	s := e.get(t)
	must(t, s, s.Open(t0))
	if s.LastBackend() != nil {
		t.Fatal("LastBackend set before any link")
	}
	must(t, s, s.Link(e.bs[1], t0))
	must(t, s, s.Relink())
	if s.Backend() != nil || s.LastBackend() != e.bs[1] {
		t.Fatalf("after Relink: Backend %v LastBackend %v, want nil and backend 1", s.Backend(), s.LastBackend())
	}
	if e.bs[1].Active() != 0 || e.bs[1].Requests() != 1 {
		t.Fatalf("backend 1 Active %d Requests %d, want 0 1", e.bs[1].Active(), e.bs[1].Requests())
	}
	s.Release(t0)
	e.settled(t, 1)
}

// TestUnlinkFromIdleIsCounted is a regression test: Unlink from Idle (a
// 400 or 408 before the request head was parsed) used to leave an open
// state uncounted, which CheckInvariants rejects, and the request never
// reached the Observer, so it had no access-log record.
func TestUnlinkFromIdleIsCounted(t *testing.T) {
	e := newEnv(t, 1, stream.Options{})
	s := e.get(t)
	must(t, s, s.Unlink())
	if !s.Counted() || s.State() != stream.Unlinked {
		t.Fatalf("Unlink from Idle: counted=%v state %s", s.Counted(), s.State())
	}
	s.Finish(t0)
	check(t, s)
	s.Release(t0)
	e.settled(t, 1)
}

func TestReleaseTwiceReturnsCapacityOnce(t *testing.T) {
	e := newEnv(t, 1, stream.Options{MaxStreams: 2})
	s := into(t, e, stream.Linked)
	other := e.get(t)
	s.Release(t0)
	s.Release(t0)
	check(t, s)
	if n := e.pool.InUse(); n != 1 {
		t.Fatalf("InUse after a double Release = %d, want 1", n)
	}
	other.Release(t0)
	e.settled(t, 1)
}
