package reconcile

import (
	"fmt"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// recordingRecorder keeps the reasons and notes of events.
type recordingRecorder struct{ got []string }

func (r *recordingRecorder) Eventf(regarding, _ runtime.Object, eventtype, reason, _ string, note string, args ...any) {
	m := regarding.(metav1.Object)
	r.got = append(r.got, fmt.Sprintf("%s %s %s %s", m.GetName(), eventtype, reason, fmt.Sprintf(note, args...)))
}

func TestSyncedEventsAnnounceEachGenerationOnceAndAreRateLimited(t *testing.T) {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1", Generation: 1}}
	rec := &recordingRecorder{}
	s := newSyncedEvents(10 * time.Second)
	t0 := time.Unix(1000, 0)
	s.announce(rec, []*networkingv1.Ingress{ing}, nil, 7, t0)
	s.announce(rec, []*networkingv1.Ingress{ing}, nil, 8, t0.Add(time.Second)) // same generation: nothing
	ing.Generation = 2
	s.announce(rec, []*networkingv1.Ingress{ing}, nil, 9, t0.Add(2*time.Second)) // within the interval: held back
	s.announce(rec, []*networkingv1.Ingress{ing}, nil, 10, t0.Add(11*time.Second))
	want := []string{"web Normal Synced generation 1 is live in route table version 7", "web Normal Synced generation 2 is live in route table version 10"}
	if fmt.Sprint(rec.got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", rec.got, want)
	}
	ing.Generation = 3
	warned := map[types.NamespacedName]bool{{Namespace: "ns", Name: "web"}: true}
	s.announce(rec, []*networkingv1.Ingress{ing}, warned, 11, t0.Add(30*time.Second))
	if len(rec.got) != 2 {
		t.Errorf("a generation with a Warning was announced as Synced: %q", rec.got)
	}
}
