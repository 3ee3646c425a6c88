package v1alpha1

import (
	"testing"
	"time"
)

func TestDurationParseFollowsTheCRDRules(t *testing.T) {
	cases := []struct {
		in   Duration
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"250ms", 250 * time.Millisecond, true},
		{"1h2m3s4ms", time.Hour + 2*time.Minute + 3*time.Second + 4*time.Millisecond, true},
		{"0s", 0, false},
		{"1.5s", 0, false},
		{"-1s", 0, false},
		{"5", 0, false},
		{"5 seconds", 0, false},
		{"1us", 0, false},
		{"", 0, false},
		{"123456s", 0, false},
		{"1h1h1h1h1h", 0, false},
	}
	for _, c := range cases {
		got, err := c.in.Parse()
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Duration(%q).Parse() = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
