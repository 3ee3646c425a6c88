package route

import (
	"sort"
	"sync"
)

// Registry owns every Backend of the process. It hands out Tokens, keeps one
// Backend per address so that a backend keeps its token and counters across
// table swaps, and retires backends that the newest table no longer uses.
//
// A Registry is used by one builder at a time: Begin starts a generation,
// Generation.Backend looks up or creates backends, and Generation.Commit
// retires every backend the generation did not ask for. Reads of Backend
// state are lock-free.
type Registry struct {
	mu        sync.Mutex
	byAddr    map[string]*Backend
	nextToken Token
	onRetire  func(*Backend)
}

// NewRegistry returns an empty registry. onRetire, when not nil, is called
// (outside the registry lock) for each backend retired by a Commit.
func NewRegistry(onRetire func(*Backend)) *Registry {
	return &Registry{byAddr: make(map[string]*Backend), onRetire: onRetire}
}

// Generation collects the backends referenced by one table build.
type Generation struct {
	reg  *Registry
	used map[string]*Backend
}

// Begin starts a generation. Only one generation may be open at a time; the
// caller serialises builds.
func (r *Registry) Begin() *Generation {
	return &Generation{reg: r, used: make(map[string]*Backend)}
}

// Backend returns the backend for addr ("ip:port"), creating it with a fresh
// token if the registry has none. pod is recorded only on creation.
func (g *Generation) Backend(addr, pod string) *Backend {
	if b, ok := g.used[addr]; ok {
		return b
	}
	r := g.reg
	r.mu.Lock()
	b, ok := r.byAddr[addr]
	if !ok {
		r.nextToken++
		b = &Backend{token: r.nextToken, addr: addr, pod: pod, sticky: stickyKey(addr), gone: make(chan struct{})}
		r.byAddr[addr] = b
	}
	r.mu.Unlock()
	g.used[addr] = b
	return b
}

// Commit retires every registered backend that this generation did not
// reference, and returns them sorted by token. Call it after the table built
// from the generation has been published, so that no new request can pick a
// retired backend.
func (g *Generation) Commit() []*Backend {
	r := g.reg
	var retired []*Backend
	r.mu.Lock()
	for addr, b := range r.byAddr {
		if _, ok := g.used[addr]; !ok {
			delete(r.byAddr, addr)
			retired = append(retired, b)
		}
	}
	r.mu.Unlock()
	sort.Slice(retired, func(i, j int) bool { return retired[i].token < retired[j].token })
	for _, b := range retired {
		b.retired.Store(true)
		close(b.gone)
		if r.onRetire != nil {
			r.onRetire(b)
		}
	}
	return retired
}

// Len returns the number of live backends.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byAddr)
}

// Lookup returns the live backend with the given address, or nil.
func (r *Registry) Lookup(addr string) *Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byAddr[addr]
}
