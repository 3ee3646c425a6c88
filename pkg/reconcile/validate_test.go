package reconcile

import (
	"net"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/pkg/route"
)

func TestValidateHost(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"example.com", "example.com", true},
		{"WWW.Example.COM", "www.example.com", true},
		{"*.example.com", "*.example.com", true},
		{"*.Example.com", "*.example.com", true},
		{"a-b.c-d.example", "a-b.c-d.example", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"localhost", "localhost", true},
		{"1.2.3.example", "1.2.3.example", true},
		{long + ".example.com", long + ".example.com", true},
		{long + "a.example.com", "", false},              // label of 64
		{strings.Repeat(long+".", 4) + "com", "", false}, // 259 bytes
		{"*", "", false},
		{"*.", "", false},
		{"*example.com", "", false},
		{"foo.*.example.com", "", false},
		{"*.*.example.com", "", false},
		{"a*.example.com", "", false},
		{"under_score.example.com", "", false},
		{"-lead.example.com", "", false},
		{"trail-.example.com", "", false},
		{"double..dot", "", false},
		{".lead", "", false},
		{"trail.", "", false},
		{"host:80", "", false},
		{"192.0.2.1", "", false},
		{"010.000.002.001", "", false},
		{"[2001:db8::1]", "", false},
		{"2001:db8::1", "", false},
		{"exa mple.com", "", false},
		{"ex\x00ample.com", "", false},
		{"exämple.com", "", false},
	}
	for _, tc := range tests {
		got, err := validateHost(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("validateHost(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "/", true},
		{"/", "/", true},
		{"/foo", "/foo", true},
		{"/foo/", "/foo/", true},
		{"/a-b_c.d~e/%20/x;y=z", "/a-b_c.d~e/%20/x;y=z", true},
		{"/.well-known/acme", "/.well-known/acme", true},
		{"/..foo", "/..foo", true},
		{"foo", "", false},
		{"*", "", false},
		{"/with space", "", false},
		{"/q?x", "", false},
		{"/f#x", "", false},
		{"/tab\t", "", false},
		{"/nul\x00", "", false},
		{"/del\x7f", "", false},
		{"/crlf\r\nX-Injected: 1", "", false},
		{"/é", "", false},
		{"//", "", false},
		{"/a//b", "", false},
		{"/a/./b", "", false},
		{"/a/../b", "", false},
		{"/a/.", "", false},
		{"/a/..", "", false},
		{"/%2f", "", false},
		{"/%2F", "", false},
	}
	for _, tc := range tests {
		got, err := validatePath(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("validatePath(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestImplementationSpecificIsPrefix pins the documented choice: Kakehi
// implements ImplementationSpecific as Prefix; a nil pathType is Prefix.
func TestImplementationSpecificIsPrefix(t *testing.T) {
	pt := func(s string) *networkingv1.PathType { p := networkingv1.PathType(s); return &p }
	tests := []struct {
		in   *networkingv1.PathType
		want route.PathKind
		ok   bool
	}{
		{nil, route.PathPrefix, true},
		{pt("Exact"), route.PathExact, true},
		{pt("Prefix"), route.PathPrefix, true},
		{pt("ImplementationSpecific"), route.PathPrefix, true},
		{pt("exact"), 0, false},
		{pt("Regex"), 0, false},
		{pt(""), 0, false},
	}
	for _, tc := range tests {
		got, err := pathKind(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("pathKind(%v) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestRouteKeyMatchesBuilder: two rules with the same routeKey are the
// same rule for route.Builder, so conflicts are detected where the table
// would drop a rule.
func TestRouteKeyMatchesBuilder(t *testing.T) {
	pairs := []struct {
		kind route.PathKind
		a, b string
		same bool
	}{
		{route.PathPrefix, "/foo", "/foo/", true},
		{route.PathPrefix, "/", "/", true},
		{route.PathPrefix, "/foo", "/foobar", false},
		{route.PathExact, "/foo", "/foo/", false},
		{route.PathExact, "/foo", "/foo", true},
	}
	for _, p := range pairs {
		b := route.NewBuilder(1)
		b.Add("h", route.Rule{Kind: p.kind, Path: p.a, Target: &route.Target{}})
		added := b.Add("h", route.Rule{Kind: p.kind, Path: p.b, Target: &route.Target{}})
		keysSame := routeKey(p.kind, p.a) == routeKey(p.kind, p.b)
		if keysSame != p.same || added == keysSame {
			t.Errorf("%v %q vs %q: routeKey same=%v, builder added second=%v, want same=%v",
				p.kind, p.a, p.b, keysSame, added, p.same)
		}
	}
}

// TestEndpointAddrIsJoinHostPort: endpoint addresses are canonical and
// formatted as net.JoinHostPort formats them; an address of the wrong
// family for its slice, a zone or a name is refused.
func TestEndpointAddrIsJoinHostPort(t *testing.T) {
	tests := []struct {
		at   discoveryv1.AddressType
		in   string
		want string // "" for refused
	}{
		{discoveryv1.AddressTypeIPv4, "10.0.0.1", net.JoinHostPort("10.0.0.1", "8080")},
		{discoveryv1.AddressTypeIPv6, "2001:DB8:0::1", net.JoinHostPort("2001:db8::1", "8080")},
		{discoveryv1.AddressTypeIPv6, "::ffff:10.0.0.1", net.JoinHostPort("::ffff:10.0.0.1", "8080")},
		{discoveryv1.AddressTypeIPv4, "2001:db8::1", ""},
		{discoveryv1.AddressTypeIPv6, "10.0.0.1", ""},
		{discoveryv1.AddressTypeIPv6, "fe80::1%eth0", ""},
		{discoveryv1.AddressTypeIPv4, "010.0.0.1", ""},
		{discoveryv1.AddressTypeFQDN, "web.example.com", ""},
	}
	for _, tc := range tests {
		got, ok := endpointAddr(&discoveryv1.Endpoint{Addresses: []string{tc.in}}, tc.at, 8080)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("endpointAddr(%s %q) = %q, %v; want %q", tc.at, tc.in, got, ok, tc.want)
		}
	}
}
