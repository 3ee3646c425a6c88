package reconcile

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
)

// ReasonSynced is the reason of the Normal event that says an Ingress
// change is live.
const ReasonSynced = "Synced"

// syncedEvents announces, with a Normal event, each new generation of our
// Ingresses that went live without a Warning. At most one event per
// Ingress per interval is sent; a burst of edits is summarised by the
// first, and the next one after the interval reports the latest state.
type syncedEvents struct {
	interval time.Duration
	seen     map[types.UID]int64     // generation last announced or considered
	last     map[types.UID]time.Time // when the last event was sent
}

func newSyncedEvents(interval time.Duration) *syncedEvents {
	return &syncedEvents{interval: interval, seen: map[types.UID]int64{}, last: map[types.UID]time.Time{}}
}

// announce sends the events for the Ingresses of one build. warned holds
// the Ingresses with a Warning in this build; version is the table's.
func (s *syncedEvents) announce(rec events.EventRecorder, ours []*networkingv1.Ingress, warned map[types.NamespacedName]bool, version uint64, now time.Time) {
	live := make(map[types.UID]bool, len(ours))
	for _, ing := range ours {
		live[ing.UID] = true
		if s.seen[ing.UID] == ing.Generation {
			continue
		}
		if now.Sub(s.last[ing.UID]) < s.interval {
			continue // rate-limited: the generation stays unannounced for a later build
		}
		s.seen[ing.UID] = ing.Generation
		if warned[types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}] || rec == nil {
			continue
		}
		s.last[ing.UID] = now
		rec.Eventf(ing, nil, corev1.EventTypeNormal, ReasonSynced, "Translate",
			"generation %d is live in route table version %d", ing.Generation, version)
	}
	for uid := range s.seen {
		if !live[uid] {
			delete(s.seen, uid)
			delete(s.last, uid)
		}
	}
}
