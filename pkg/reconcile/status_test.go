package reconcile

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestParsePublishAddresses(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []networkingv1.IngressLoadBalancerIngress
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "192.0.2.10", want: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.10"}}},
		{in: "2001:db8::1, lb.example.com", want: []networkingv1.IngressLoadBalancerIngress{{IP: "2001:db8::1"}, {Hostname: "lb.example.com"}}},
		{in: "a,,b.example", want: []networkingv1.IngressLoadBalancerIngress{{Hostname: "a"}, {Hostname: "b.example"}}},
		{in: "not a host", wantErr: true},
		{in: "http://x", wantErr: true},
		{in: "UPPER.example", wantErr: true},
	} {
		got, err := ParsePublishAddresses(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePublishAddresses(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !sameAddresses(got, tc.want) {
			t.Errorf("ParsePublishAddresses(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSameAddressesIgnoresOrder(t *testing.T) {
	a := []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}, {Hostname: "x.example"}}
	b := []networkingv1.IngressLoadBalancerIngress{{Hostname: "x.example"}, {IP: "192.0.2.1"}}
	if !sameAddresses(a, b) {
		t.Error("same entries in another order compare unequal")
	}
	if sameAddresses(a, a[:1]) || sameAddresses(a, nil) {
		t.Error("different lists compare equal")
	}
	if !sameAddresses(nil, []networkingv1.IngressLoadBalancerIngress{}) {
		t.Error("nil and empty compare unequal")
	}
}
