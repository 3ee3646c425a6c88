package route

import "strings"

// Builder assembles a Table. It is not safe for concurrent use; a Builder
// must not be used after Build.
type Builder struct {
	t *Table
}

// NewBuilder returns a builder for a table stamped with version.
func NewBuilder(version uint64) *Builder {
	return &Builder{t: &Table{
		exact:    make(map[string]*VirtualHost),
		wildcard: make(map[string]*VirtualHost),
		version:  version,
	}}
}

// Add adds rule under host ("" for every host, "*.example.com" for a
// one-label wildcard, else an exact host). The host must already be
// validated. Add reports false when an earlier rule already holds the same
// host, kind and path; the earlier rule is kept.
func (b *Builder) Add(host string, rule Rule) bool {
	return b.vhost(strings.ToLower(host)).add(rule)
}

func (b *Builder) vhost(host string) *VirtualHost {
	var m map[string]*VirtualHost
	switch {
	case host == "":
		if b.t.anyHost == nil {
			b.t.anyHost = newVirtualHost()
		}
		return b.t.anyHost
	case strings.HasPrefix(host, "*."):
		m, host = b.t.wildcard, host[2:]
	default:
		m = b.t.exact
	}
	v, ok := m[host]
	if !ok {
		v = newVirtualHost()
		m[host] = v
	}
	return v
}

// SetDefault sets the target for requests that match no rule. It reports
// false, keeping the first, when a default was already set.
func (b *Builder) SetDefault(t *Target) bool {
	if b.t.defaultBackend != nil {
		return false
	}
	b.t.defaultBackend = t
	return true
}

// Build returns the finished, immutable table.
func (b *Builder) Build() *Table {
	t := b.t
	b.t = nil
	return t
}
