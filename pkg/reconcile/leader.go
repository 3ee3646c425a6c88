package reconcile

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Leader decides which replica writes status. Only status writes are gated
// by it: every replica builds routes and serves traffic whether it leads or
// not, and losing the lease never stops the data plane. A Leader with no
// Client always leads (leader election off).
type Leader struct {
	Client        kubernetes.Interface // nil: leader election off, always leading
	Namespace     string               // where the Lease lives
	Name          string               // the Lease's name
	LeaseDuration time.Duration        // 0 = 15s

	leading     atomic.Bool
	mu          sync.Mutex
	subscribers []chan event.GenericEvent
}

// Elected returns a channel that receives an event each time this replica
// becomes leader, so that a status writer can resync at once (wire it with
// source.Channel). Call it before Start. A pending event is not duplicated:
// one resync covers any number of elections.
func (l *Leader) Elected() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1)
	l.mu.Lock()
	l.subscribers = append(l.subscribers, ch)
	l.mu.Unlock()
	return ch
}

// IsLeader reports whether this replica currently holds the lease.
func (l *Leader) IsLeader() bool { return l.Client == nil || l.leading.Load() }

// NeedLeaderElection reports false: the elector itself runs on every
// replica.
func (l *Leader) NeedLeaderElection() bool { return false }

// Start campaigns for the lease until ctx ends, campaigning again after
// every loss. With no Client it leads at once and waits for ctx.
func (l *Leader) Start(ctx context.Context) error {
	if l.Client == nil {
		l.elected()
		<-ctx.Done()
		return nil
	}
	elector, err := l.elector()
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		elector.Run(ctx) // returns when the lease is lost or ctx ends
	}
	return nil
}

func (l *Leader) elector() (*leaderelection.LeaderElector, error) {
	host, _ := os.Hostname()
	id := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, l.Namespace, l.Name,
		l.Client.CoreV1(), l.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return nil, fmt.Errorf("leader election lock %s/%s: %w", l.Namespace, l.Name, err)
	}
	d := l.LeaseDuration
	if d <= 0 {
		d = 15 * time.Second
	}
	logger := log.Log.WithName("leader").WithValues("lease", l.Namespace+"/"+l.Name, "identity", id)
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   d,
		RenewDeadline:   d * 2 / 3,
		RetryPeriod:     d / 7,
		ReleaseOnCancel: true,
		Name:            l.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { logger.Info("became leader: writing status"); l.elected() },
			OnStoppedLeading: func() { logger.Info("lost the lease: status writes stop, traffic continues"); l.leading.Store(false) },
		},
	})
}

func (l *Leader) elected() {
	l.leading.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.subscribers {
		select {
		case ch <- event.GenericEvent{}:
		default:
		}
	}
}
