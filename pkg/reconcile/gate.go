package reconcile

import (
	"context"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// statusController starts the builder of a status writer named name. Our
// own Leader gates its writes, so the controller runs on every replica
// (controller-runtime's leader election is off for it) and resyncs through
// all each time leader becomes this replica; a nil leader always writes.
func statusController(mgr ctrl.Manager, name string, leader *Leader, all handler.EventHandler) *builder.Builder {
	noLeader := false
	b := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(controller.Options{NeedLeaderElection: &noLeader})
	if leader != nil {
		b = b.WatchesRawSource(source.Channel(leader.Elected(), all))
	}
	return b
}

// requestsFor lists list with c (no deep copies) and returns one request
// per item; a failed list yields none, to be caught by the next event.
func requestsFor(ctx context.Context, c client.Reader, list client.ObjectList) []crreconcile.Request {
	if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return nil
	}
	reqs := make([]crreconcile.Request, 0, len(items))
	for _, o := range items {
		if obj, ok := o.(client.Object); ok {
			reqs = append(reqs, crreconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
	}
	return reqs
}
