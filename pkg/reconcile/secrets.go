package reconcile

import (
	"context"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// SecretWatcher keeps a watch on exactly the Secrets that the route table
// references (spec.tls of our Ingresses and the default TLS secret), one
// single-object informer each, so that the controller never lists or caches
// the other Secrets of the cluster. A change to a watched Secret calls
// Changed.
type SecretWatcher struct {
	Client  kubernetes.Interface
	Changed func() // called on every add, update or delete of a watched Secret

	mu      sync.Mutex
	watches map[types.NamespacedName]*secretWatch
}

type secretWatch struct {
	informer toolscache.SharedIndexInformer
	stop     chan struct{}
}

// Ensure makes the set of watched Secrets equal refs: it starts a watch for
// each new reference and stops those no longer referenced.
func (w *SecretWatcher) Ensure(refs map[types.NamespacedName]struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watches == nil {
		w.watches = make(map[types.NamespacedName]*secretWatch)
	}
	for key, sw := range w.watches {
		if _, ok := refs[key]; !ok {
			close(sw.stop)
			delete(w.watches, key)
		}
	}
	for key := range refs {
		if _, ok := w.watches[key]; !ok {
			w.watches[key] = w.start(key)
		}
	}
}

// start begins a watch on one Secret by name.
func (w *SecretWatcher) start(key types.NamespacedName) *secretWatch {
	selector := fields.OneTermEqualSelector("metadata.name", key.Name).String()
	secrets := w.Client.CoreV1().Secrets(key.Namespace)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return secrets.Watch(ctx, o)
		},
	}
	inf := toolscache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, toolscache.Indexers{})
	changed := func(any) {
		if w.Changed != nil {
			w.Changed()
		}
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, o any) { changed(o) },
		DeleteFunc: changed,
	})
	sw := &secretWatch{informer: inf, stop: make(chan struct{})}
	go inf.Run(sw.stop)
	return sw
}

// Secrets returns the watched Secrets that exist, sorted by namespace/name.
// The objects are shared with the informers and must not be modified.
func (w *SecretWatcher) Secrets() []corev1.Secret {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []corev1.Secret
	for _, sw := range w.watches {
		for _, o := range sw.informer.GetStore().List() {
			out = append(out, *o.(*corev1.Secret))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Synced reports whether every watch has completed its first list, so that
// a missing Secret is really missing and not merely not yet seen.
func (w *SecretWatcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sw := range w.watches {
		if !sw.informer.HasSynced() {
			return false
		}
	}
	return true
}

// Stop ends every watch.
func (w *SecretWatcher) Stop() {
	w.Ensure(nil)
}
