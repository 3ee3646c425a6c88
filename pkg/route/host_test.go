package route_test

import "testing"

// hostTable has one catch-all rule per host pattern, labelled by pattern.
func hostTable(t *testing.T) func(host string) string {
	tbl := build(t,
		hostRule{"foo.com", prefix("/", "foo.com")},
		hostRule{"*.foo.com", prefix("/", "*.foo.com")},
		hostRule{"MiXeD.Example.ORG", prefix("/", "mixed.example.org")},
		hostRule{"[::1]", prefix("/", "[::1]")},
	)
	return func(host string) string { return name(tbl.Match(host, "/")) }
}

func TestWildcardHostMatchesExactlyOneLabel(t *testing.T) {
	match := hostTable(t)
	for _, tc := range []struct {
		host, want string
	}{
		{"bar.foo.com", "*.foo.com"},
		{"x.foo.com", "*.foo.com"},
		{"baz.bar.foo.com", ""}, // two extra labels
		{"foo.com", "foo.com"},  // no extra label: only the exact rule
		{".foo.com", ""},        // an empty label is not a label
		{"barfoo.com", ""},      // suffix match must be on a dot
		{"bar.foo.com.evil", ""},
		{"bar.foo.org", ""},
	} {
		if got := match(tc.host); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestHostMatchIgnoresCasePortAndTrailingDot(t *testing.T) {
	match := hostTable(t)
	for _, tc := range []struct {
		host, want string
	}{
		{"FOO.COM", "foo.com"},
		{"Foo.Com", "foo.com"},
		{"foo.com:8080", "foo.com"},
		{"foo.com:", "foo.com"},
		{"foo.com.", "foo.com"},
		{"Foo.Com.:443", "foo.com"},
		{"BAR.foo.com:80", "*.foo.com"},
		{"bar.foo.com.", "*.foo.com"},
		{"bar.FOO.com.:8443", "*.foo.com"},
		{"mixed.example.org", "mixed.example.org"}, // rule host is lower-cased too
		{"MIXED.EXAMPLE.ORG:80", "mixed.example.org"},
		{"[::1]", "[::1]"},
		{"[::1]:8080", "[::1]"},
		{"[::2]:8080", ""},
		{"", ""},
		{"foo.com.org", ""},
	} {
		if got := match(tc.host); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestExactHostBeatsWildcardForTheSameName(t *testing.T) {
	tbl := build(t,
		hostRule{"*.foo.com", prefix("/", "wild")},
		hostRule{"a.foo.com", prefix("/", "exact")},
	)
	for host, want := range map[string]string{"a.foo.com": "exact", "b.foo.com": "wild"} {
		if got := name(tbl.Match(host, "/x")); got != want {
			t.Errorf("Match(%q) = %q, want %q", host, got, want)
		}
	}
}
