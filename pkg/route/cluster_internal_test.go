package route

import (
	"math"
	"testing"
)

// TestPickVisitsEverySlotWhenTheCursorWraps is a regression test: Pick
// used to index with (start+i)%n in uint32, so when start+i wrapped past
// MaxUint32 the scan revisited slot 0 and skipped the last slot, and a
// cluster whose only live backend sat there answered "no backend".
func TestPickVisitsEverySlotWhenTheCursorWraps(t *testing.T) {
	reg := NewRegistry(nil)
	g := reg.Begin()
	bs := []*Backend{g.Backend("10.0.0.1:80", ""), g.Backend("10.0.0.2:80", ""), g.Backend("10.0.0.3:80", "")}
	g.Commit()
	g = reg.Begin()
	g.Backend(bs[2].Addr(), "")
	g.Commit() // only the last slot stays live

	c := NewCluster("ns/svc:80", bs, "")
	for _, cursor := range []uint32{math.MaxUint32, math.MaxUint32 - 1, math.MaxUint32 - 2, 0} {
		c.next.Store(cursor)
		if got := c.Pick(nil); got != bs[2] {
			t.Errorf("cursor %d: Pick = %v, want the last backend", cursor, got)
		}
	}
}
