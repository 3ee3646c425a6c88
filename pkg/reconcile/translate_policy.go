package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/pkg/route"
)

// PolicyResult is what resolution decided for one RoutePolicy: its two
// conditions, ready to be written to its status by the leader.
type PolicyResult struct {
	Namespace, Name string
	Generation      int64
	Accepted        metav1.Condition
	ResolvedRefs    metav1.Condition
}

// ResolvePolicies attaches RoutePolicies to our Ingresses. A policy
// attaches to the Ingresses its targetRefs name in its own namespace. When
// two policies target the same Ingress the older one wins (creation time,
// then namespace/name, as Gateway API resolves policy conflicts); the
// loser is not Accepted for that Ingress and its condition names the
// winner. It returns the policy of each Ingress ("namespace/name") and a
// result per policy, in precedence order.
func ResolvePolicies(snap *Snapshot, opts Options) (map[objKey]*route.Policy, []PolicyResult) {
	ours := make(map[objKey]bool)
	for _, ing := range Ours(snap, opts) {
		ours[objKey{ing.Namespace, ing.Name}] = true
	}
	exists := make(map[objKey]bool, len(snap.Ingresses))
	for i := range snap.Ingresses {
		exists[objKey{snap.Ingresses[i].Namespace, snap.Ingresses[i].Name}] = true
	}
	policies := make([]*v1alpha1.RoutePolicy, len(snap.RoutePolicies))
	for i := range snap.RoutePolicies {
		policies[i] = &snap.RoutePolicies[i]
	}
	slices.SortFunc(policies, func(a, b *v1alpha1.RoutePolicy) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	attached := make(map[objKey]*route.Policy)
	winner := make(map[objKey]string)
	results := make([]PolicyResult, 0, len(policies))
	for _, p := range policies {
		results = append(results, attach(p, ours, exists, attached, winner))
	}
	return attached, results
}

// attach resolves one policy against the Ingresses, recording the
// Ingresses it wins in attached and winner.
func attach(p *v1alpha1.RoutePolicy, ours, exists map[objKey]bool, attached map[objKey]*route.Policy, winner map[objKey]string) PolicyResult {
	res := PolicyResult{Namespace: p.Namespace, Name: p.Name, Generation: p.Generation}
	self := p.Namespace + "/" + p.Name
	rp, err := policyFromSpec(self, &p.Spec)
	if err != nil {
		res.Accepted = condition(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, err.Error(), p.Generation)
		res.ResolvedRefs = condition(v1alpha1.ConditionResolvedRefs, false, v1alpha1.ReasonInvalid, "not resolved: the policy is invalid", p.Generation)
		return res
	}
	var missing, notOurs, conflicts, won []string
	for _, ref := range p.Spec.TargetRefs {
		key := objKey{p.Namespace, ref.Name}
		switch {
		case ref.Group != networkingv1.GroupName || ref.Kind != "Ingress":
			missing = append(missing, fmt.Sprintf("%s/%s %s (only networking.k8s.io/Ingress is supported)", ref.Group, ref.Kind, ref.Name))
		case !exists[key]:
			missing = append(missing, "Ingress "+ref.Name)
		case !ours[key]:
			notOurs = append(notOurs, "Ingress "+ref.Name)
		case winner[key] != "" && winner[key] != self:
			conflicts = append(conflicts, fmt.Sprintf("Ingress %s already has the older policy %s", ref.Name, winner[key]))
		default:
			winner[key], attached[key] = self, rp
			won = append(won, ref.Name)
		}
	}
	res.ResolvedRefs = refsCondition(missing, notOurs, p.Generation)
	res.Accepted = acceptedCondition(won, conflicts, p.Generation)
	return res
}

func refsCondition(missing, notOurs []string, gen int64) metav1.Condition {
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "not found: "+strings.Join(missing, ", "))
	}
	if len(notOurs) > 0 {
		parts = append(parts, "not served by this controller's IngressClass: "+strings.Join(notOurs, ", "))
	}
	switch {
	case len(missing) > 0:
		return condition(v1alpha1.ConditionResolvedRefs, false, v1alpha1.ReasonTargetNotFound, strings.Join(parts, "; "), gen)
	case len(notOurs) > 0:
		return condition(v1alpha1.ConditionResolvedRefs, false, v1alpha1.ReasonTargetNotOurs, strings.Join(parts, "; "), gen)
	}
	return condition(v1alpha1.ConditionResolvedRefs, true, v1alpha1.ReasonResolvedRefs, "every target resolved", gen)
}

func acceptedCondition(won, conflicts []string, gen int64) metav1.Condition {
	switch {
	case len(conflicts) > 0:
		msg := strings.Join(conflicts, "; ") + " (the oldest policy wins)"
		if len(won) > 0 {
			msg = "applied to Ingress " + strings.Join(won, ", ") + "; " + msg
		}
		return condition(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonConflicted, msg, gen)
	case len(won) == 0:
		return condition(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonTargetNotFound, "no target to apply to", gen)
	}
	return condition(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, "applied to Ingress "+strings.Join(won, ", "), gen)
}

func condition(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen}
}

// policyFromSpec converts a validated spec into a route.Policy. The API
// server's schema already refuses bad values; errors here cover objects
// written before a schema change.
func policyFromSpec(source string, s *v1alpha1.RoutePolicySpec) (*route.Policy, error) {
	p := &route.Policy{Source: source, MaxRequestBody: -1}
	if err := setTimeouts(p, s.Timeouts); err != nil {
		return nil, err
	}
	if r := s.Retries; r != nil {
		p.MaxAttempts = int(r.Attempts)
		for _, on := range r.On {
			bit, ok := retryBits[on]
			if !ok {
				return nil, fmt.Errorf("spec.retries.on: unknown condition %q", on)
			}
			p.RetryOn |= bit
		}
	}
	if err := setBalance(p, s.LoadBalancing); err != nil {
		return nil, err
	}
	if a := s.SessionAffinity; a != nil {
		p.AffinityCookie = a.Cookie.Name
		if a.Cookie.TTL != nil {
			d, err := a.Cookie.TTL.Parse()
			if err != nil {
				return nil, fmt.Errorf("spec.sessionAffinity.cookie.ttl: %w", err)
			}
			p.AffinityTTL = d
		}
	}
	if s.MaxRequestBodyBytes != nil {
		p.MaxRequestBody = *s.MaxRequestBodyBytes
	}
	if s.BackendProtocol == v1alpha1.BackendH2C {
		p.BackendProtocol = route.ProtocolH2C
	}
	return p, nil
}

var retryBits = map[v1alpha1.RetryOn]route.RetryOn{
	v1alpha1.RetryOnConnectFailure:      route.RetryConnectFailure,
	v1alpha1.RetryOnRefusedStream:       route.RetryRefusedStream,
	v1alpha1.RetryOnResetBeforeResponse: route.RetryResetBeforeResponse,
	v1alpha1.RetryOnStatus502:           route.RetryStatus502,
	v1alpha1.RetryOnStatus503:           route.RetryStatus503,
	v1alpha1.RetryOnStatus504:           route.RetryStatus504,
}

func setTimeouts(p *route.Policy, t *v1alpha1.Timeouts) error {
	if t == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		d    *v1alpha1.Duration
		dst  *time.Duration
	}{{"connect", t.Connect, &p.ConnectTimeout}, {"request", t.Request, &p.RequestTimeout}, {"idle", t.Idle, &p.IdleTimeout}} {
		if f.d == nil {
			continue
		}
		d, err := f.d.Parse()
		if err != nil {
			return fmt.Errorf("spec.timeouts.%s: %w", f.name, err)
		}
		*f.dst = d
	}
	return nil
}

func setBalance(p *route.Policy, lb *v1alpha1.LoadBalancing) error {
	if lb == nil {
		return nil
	}
	switch lb.Policy {
	case v1alpha1.RoundRobin, "":
		p.Balance = route.RoundRobin
	case v1alpha1.LeastRequest:
		p.Balance = route.LeastRequest
	case v1alpha1.ConsistentHash:
		p.Balance = route.ConsistentHash
		h := lb.Hash
		switch {
		case h == nil:
			return fmt.Errorf("spec.loadBalancing.hash: required for ConsistentHash")
		case h.Header != nil:
			p.HashOn, p.HashName = route.HashHeader, *h.Header
		case h.Cookie != nil:
			p.HashOn, p.HashName = route.HashCookie, *h.Cookie
		case h.ClientAddress != nil && *h.ClientAddress:
			p.HashOn = route.HashClientAddr
		default:
			return fmt.Errorf("spec.loadBalancing.hash: set one of header, cookie, clientAddress")
		}
	default:
		return fmt.Errorf("spec.loadBalancing.policy: unknown %q", lb.Policy)
	}
	return nil
}
