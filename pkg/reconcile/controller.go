package reconcile

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// DefaultHoldOff is how long a change waits for more changes before the
// route table is rebuilt. It bounds the extra latency a burst adds while
// keeping a burst of N events to one rebuild.
const DefaultHoldOff = 3 * time.Millisecond

// rebuildKey is the one work-queue key: every watched object maps to it, so
// the work queue coalesces bursts and runs one rebuild at a time.
var rebuildKey = crreconcile.Request{NamespacedName: types.NamespacedName{Name: "route-table"}}

// Controller watches Ingress, IngressClass, Service and EndpointSlice,
// rebuilds the route table with Build whenever any of them changes, and
// publishes it to Store. Every replica runs it; it does not need
// leadership.
type Controller struct {
	Reader   client.Reader        // the manager's cache
	Store    *route.Store         // where tables are published
	Registry *route.Registry      // backends and their tokens
	Options  Options              // which Ingresses are ours
	Recorder events.EventRecorder // Events for Problems; nil = none
	Metrics  *metrics.Reconcile   // nil = none
	HoldOff  time.Duration        // 0 = DefaultHoldOff
	// Secrets watches the TLS Secrets that the table references; nil
	// means TLS Secrets are not read.
	Secrets *SecretWatcher
	// Policies says the RoutePolicy CRD is installed and watched.
	Policies bool

	version uint64
	emitted map[Problem]struct{}
	synced  *syncedEvents
}

// SetupWithManager registers the controller with mgr.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	if c.HoldOff == 0 {
		c.HoldOff = DefaultHoldOff
	}
	enqueue := c.enqueueHandler()
	noLeader := false
	b := ctrl.NewControllerManagedBy(mgr).
		Named("kakehi-routes").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, NeedLeaderElection: &noLeader}).
		Watches(&networkingv1.Ingress{}, enqueue).
		Watches(&networkingv1.IngressClass{}, enqueue).
		Watches(&corev1.Service{}, enqueue).
		Watches(&discoveryv1.EndpointSlice{}, enqueue).
		// One rebuild at start, so that an empty cluster or namespace
		// still publishes a (empty) table and the replica turns ready.
		WatchesRawSource(source.Channel(startOnce(), enqueue))
	if c.Policies {
		b = b.Watches(&v1alpha1.RoutePolicy{}, enqueue)
	}
	if c.Secrets != nil {
		// One pending event is enough: the rebuild it causes reads the
		// latest state of every watched Secret.
		changed := make(chan event.GenericEvent, 1)
		c.Secrets.Changed = func() {
			select {
			case changed <- event.GenericEvent{}:
			default:
			}
		}
		b = b.WatchesRawSource(source.Channel(changed, enqueue))
	}
	return b.Complete(c)
}

// startOnce returns a channel holding one event.
func startOnce() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1)
	ch <- event.GenericEvent{}
	return ch
}

// enqueueHandler maps every event to rebuildKey after the hold-off. The
// delaying queue keeps the earliest due time for a key already waiting, so
// a burst never postpones a rebuild by more than one hold-off.
func (c *Controller) enqueueHandler() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
		q.AddAfter(rebuildKey, c.HoldOff)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, _ event.UpdateEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
			add(q)
		},
		GenericFunc: func(_ context.Context, _ event.GenericEvent, q workqueue.TypedRateLimitingInterface[crreconcile.Request]) {
			add(q)
		},
	}
}

// Reconcile rebuilds and publishes the route table from the cache.
func (c *Controller) Reconcile(ctx context.Context, _ crreconcile.Request) (crreconcile.Result, error) {
	start := time.Now()
	snap, err := c.snapshot(ctx)
	if err != nil {
		c.countRebuild(metrics.ConfigRebuildResultFailed)
		return crreconcile.Result{}, fmt.Errorf("reading cache: %w", err)
	}
	c.readSecrets(ctx, snap)
	c.version++
	gen := c.Registry.Begin()
	table, problems := Build(snap, c.Options, gen, c.version)
	c.Store.Publish(table)
	gen.Commit()
	c.observe(start, snap, problems)
	c.emit(ctx, snap, problems)
	log.FromContext(ctx).V(1).Info("route table published", "version", c.version,
		"problems", len(problems), "took", time.Since(start))
	return crreconcile.Result{}, nil
}

// snapshot lists every watched kind from the cache without deep copies; the
// objects are read-only.
func (c *Controller) snapshot(ctx context.Context) (*Snapshot, error) {
	var (
		classes networkingv1.IngressClassList
		ings    networkingv1.IngressList
		svcs    corev1.ServiceList
		slices  discoveryv1.EndpointSliceList
	)
	for _, l := range []client.ObjectList{&classes, &ings, &svcs, &slices} {
		if err := c.Reader.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
	}
	snap := &Snapshot{
		IngressClasses: classes.Items,
		Ingresses:      ings.Items,
		Services:       svcs.Items,
		EndpointSlices: slices.Items,
	}
	if c.Policies {
		var pols v1alpha1.RoutePolicyList
		if err := c.Reader.List(ctx, &pols, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		snap.RoutePolicies = pols.Items
	}
	return snap, nil
}

// secretSyncWait bounds how long a rebuild waits for the first list of a
// newly referenced Secret, so that a Secret that exists is not reported
// missing merely because its watch has just started.
const secretSyncWait = 2 * time.Second

// readSecrets points the Secret watches at the Secrets snap references and
// adds those Secrets to snap.
func (c *Controller) readSecrets(ctx context.Context, snap *Snapshot) {
	if c.Secrets == nil {
		return
	}
	c.Secrets.Ensure(TLSSecretRefs(snap, c.Options))
	wctx, cancel := context.WithTimeout(ctx, secretSyncWait)
	defer cancel()
	toolscache.WaitForCacheSync(wctx.Done(), c.Secrets.Synced)
	snap.Secrets = c.Secrets.Secrets()
}

func (c *Controller) countRebuild(result string) {
	if c.Metrics != nil {
		c.Metrics.Rebuilds.WithLabelValues(result).Inc()
	}
}

func (c *Controller) observe(start time.Time, snap *Snapshot, problems []Problem) {
	if c.Metrics == nil {
		return
	}
	m := c.Metrics
	m.Rebuilds.WithLabelValues(metrics.ConfigRebuildResultOK).Inc()
	m.RebuildTime.Observe(time.Since(start).Seconds())
	m.Synced(time.Now())
	m.TableVersion.Set(float64(c.version))
	m.Problems.Set(float64(len(problems)))
	m.Backends.Set(float64(c.Registry.Len()))
	m.IngressesOurs.Set(float64(len(Ours(snap, c.Options))))
}

// emit records an Event for every Problem that the previous build did not
// report, so a problem is announced once, not on every rebuild, and again
// if it goes away and comes back.
func (c *Controller) emit(ctx context.Context, snap *Snapshot, problems []Problem) {
	logger := log.FromContext(ctx)
	next := make(map[Problem]struct{}, len(problems))
	for _, p := range problems {
		next[p] = struct{}{}
		if _, seen := c.emitted[p]; seen {
			continue
		}
		logger.Info("configuration problem", "kind", p.Kind, "namespace", p.Namespace, "name", p.Name,
			"reason", p.Reason, "message", p.Message)
		if c.Recorder == nil {
			continue
		}
		if obj := findObject(snap, p); obj != nil {
			c.Recorder.Eventf(obj, nil, p.Type, p.Reason, "Translate", "%s", p.Message)
		}
	}
	c.emitted = next
	warned := make(map[types.NamespacedName]bool)
	for _, p := range problems {
		if p.Kind == "Ingress" && p.Type == corev1.EventTypeWarning {
			warned[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = true
		}
	}
	if c.synced == nil {
		c.synced = newSyncedEvents(syncedEventInterval)
	}
	c.synced.announce(c.Recorder, Ours(snap, c.Options), warned, c.version, time.Now())
}

// syncedEventInterval bounds Normal "Synced" events to one per Ingress per
// interval.
const syncedEventInterval = 10 * time.Second

// findObject returns the object a Problem is about, from the snapshot.
func findObject(snap *Snapshot, p Problem) client.Object {
	switch p.Kind {
	case "Ingress":
		for i := range snap.Ingresses {
			if o := &snap.Ingresses[i]; o.Namespace == p.Namespace && o.Name == p.Name {
				return o
			}
		}
	case "IngressClass":
		for i := range snap.IngressClasses {
			if o := &snap.IngressClasses[i]; o.Name == p.Name {
				return o
			}
		}
	}
	return nil
}
