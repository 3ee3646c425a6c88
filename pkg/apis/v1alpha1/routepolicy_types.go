package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoutePolicy sets how Kakehi proxies the traffic of the Ingresses it
// targets, all in the policy's own namespace: timeouts, retries, load
// balancing, session affinity, the request body limit and the backend
// protocol. A field left out keeps the controller's default (its --proxy-*
// flags).
//
// When two RoutePolicies target the same Ingress, the older one (by
// creationTimestamp, then by namespace/name) wins for that Ingress, as in
// Gateway API; the other is told so in its Accepted condition.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rp,categories=kakehi
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="ResolvedRefs",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoutePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the policy asks for.
	// +required
	Spec RoutePolicySpec `json:"spec"`

	// Status is written by the leader replica of the controller.
	// +optional
	Status RoutePolicyStatus `json:"status,omitempty"`
}

// RoutePolicySpec is the desired behaviour for the traffic of TargetRefs.
type RoutePolicySpec struct {
	// TargetRefs names the Ingresses, in the policy's namespace, that the
	// policy applies to.
	// +required
	// +listType=map
	// +listMapKey=group
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	TargetRefs []LocalPolicyTargetReference `json:"targetRefs"`

	// Timeouts bound the phases of a proxied request.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`

	// Retries sets how often, and on which failures, a request is tried
	// again on another endpoint. A request is only retried while nothing
	// that cannot be repeated has reached a backend.
	// +optional
	Retries *Retries `json:"retries,omitempty"`

	// LoadBalancing chooses the endpoint of each request.
	// +optional
	LoadBalancing *LoadBalancing `json:"loadBalancing,omitempty"`

	// SessionAffinity keeps a client on one endpoint by a cookie that the
	// proxy sets. It takes precedence over LoadBalancing while the endpoint
	// named by the cookie is ready.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`

	// MaxRequestBodyBytes bounds a request body; a larger one is answered
	// 413. 0 means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxRequestBodyBytes *int64 `json:"maxRequestBodyBytes,omitempty"`

	// BackendProtocol is how the proxy speaks to the backends: HTTP1
	// (HTTP/1.1, the default) or H2C (HTTP/2 over cleartext, prior
	// knowledge).
	// +optional
	BackendProtocol BackendProtocol `json:"backendProtocol,omitempty"`
}

// LocalPolicyTargetReference names an object in the policy's namespace.
type LocalPolicyTargetReference struct {
	// Group is the API group of the target: networking.k8s.io.
	// +required
	// +kubebuilder:validation:Enum=networking.k8s.io
	Group string `json:"group"`

	// Kind is the kind of the target: Ingress.
	// +required
	// +kubebuilder:validation:Enum=Ingress
	Kind string `json:"kind"`

	// Name is the target's name (a DNS subdomain).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// Duration is a time span written as one to four number-unit pairs with
// the units h, m, s and ms, such as "5s", "1m30s" or "250ms" (the Gateway
// API duration format, a subset of Go's time.ParseDuration). It must be
// greater than zero.
//
// +kubebuilder:validation:Pattern=`^([0-9]{1,5}(h|m|s|ms)){1,4}$`
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be greater than zero"
type Duration string

// Timeouts bound the phases of a proxied request. Each one left out keeps
// the controller's flag default.
type Timeouts struct {
	// Connect bounds a connection attempt to a backend endpoint; a slower
	// connect counts as a connect-failure for Retries.
	// +optional
	Connect *Duration `json:"connect,omitempty"`

	// Request bounds the time from sending a request to a backend to the
	// end of the backend's response head; after it the client gets 504.
	// +optional
	Request *Duration `json:"request,omitempty"`

	// Idle bounds each wait for progress while a request or response body
	// streams, in either direction.
	// +optional
	Idle *Duration `json:"idle,omitempty"`
}

// RetryOn is a failure after which a request may be tried again on another
// endpoint.
//
// +kubebuilder:validation:Enum=connect-failure;refused-stream;reset-before-response;status-502;status-503;status-504
type RetryOn string

// The failures that RetryOn names.
const (
	// RetryOnConnectFailure: the connection to the endpoint could not be
	// made (refused, unreachable, or the connect timeout).
	RetryOnConnectFailure RetryOn = "connect-failure"
	// RetryOnRefusedStream: an HTTP/2 backend refused the stream
	// (REFUSED_STREAM or GOAWAY past its ID), so it did no work.
	RetryOnRefusedStream RetryOn = "refused-stream"
	// RetryOnResetBeforeResponse: the backend closed or reset the
	// connection before any response byte; only safe for idempotent
	// requests (RFC 9110 §9.2.2), and only those are retried.
	RetryOnResetBeforeResponse RetryOn = "reset-before-response"
	// RetryOnStatus502 retries a 502 response of an idempotent request.
	RetryOnStatus502 RetryOn = "status-502"
	// RetryOnStatus503 retries a 503 response of an idempotent request.
	RetryOnStatus503 RetryOn = "status-503"
	// RetryOnStatus504 retries a 504 response of an idempotent request.
	RetryOnStatus504 RetryOn = "status-504"
)

// Retries sets how many attempts a request gets and after which failures.
type Retries struct {
	// Attempts is the most backend attempts per request, the first one
	// included: 1 turns retries off.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`

	// On (retryOn in YAML: a bare "on" key is read as the boolean true by
	// YAML 1.1 parsers) lists the failures that allow another attempt. Left out, it is
	// connect-failure and refused-stream: the failures after which the
	// backend cannot have seen the request.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=6
	// +kubebuilder:default={"connect-failure","refused-stream"}
	On []RetryOn `json:"retryOn,omitempty"`
}

// LoadBalancingPolicy is how an endpoint is chosen for a request.
//
// +kubebuilder:validation:Enum=RoundRobin;LeastRequest;ConsistentHash
type LoadBalancingPolicy string

// The load-balancing policies.
const (
	// RoundRobin takes the ready endpoints in turn.
	RoundRobin LoadBalancingPolicy = "RoundRobin"
	// LeastRequest picks two ready endpoints at random and sends to the one
	// with fewer requests in progress (power of two choices).
	LeastRequest LoadBalancingPolicy = "LeastRequest"
	// ConsistentHash maps the key named by Hash onto the ready endpoints,
	// so that one key keeps going to one endpoint while the set is stable
	// and few keys move when it changes.
	ConsistentHash LoadBalancingPolicy = "ConsistentHash"
)

// LoadBalancing chooses the endpoint of each request.
//
// +kubebuilder:validation:XValidation:rule="self.policy == 'ConsistentHash' ? has(self.hash) : !has(self.hash)",message="hash is required when policy is ConsistentHash, and not allowed otherwise"
type LoadBalancing struct {
	// Policy is the load-balancing algorithm.
	// +required
	Policy LoadBalancingPolicy `json:"policy"`

	// Hash names the key of ConsistentHash; required for it, refused for
	// the other policies.
	// +optional
	Hash *HashSource `json:"hash,omitempty"`
}

// HashSource names the one request attribute whose value is hashed.
// Exactly one field must be set. A request that lacks the header or the
// cookie is balanced round robin.
//
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.cookie), has(self.clientAddress) && self.clientAddress].filter(x, x).size() == 1",message="exactly one of header, cookie or clientAddress must be set"
type HashSource struct {
	// Header hashes the value of this request header field (first line).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Header *string `json:"header,omitempty"`

	// Cookie hashes the value of this request cookie.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Cookie *string `json:"cookie,omitempty"`

	// ClientAddress, when true, hashes the client's IP address (the
	// connection's peer, or the first X-Forwarded-For entry when the
	// controller trusts forwarded headers).
	// +optional
	ClientAddress *bool `json:"clientAddress,omitempty"`
}

// SessionAffinity keeps a client on one endpoint.
type SessionAffinity struct {
	// Cookie is the affinity cookie the proxy sets on the first response
	// and reads on later requests.
	// +required
	Cookie AffinityCookie `json:"cookie"`
}

// AffinityCookie describes the cookie that carries session affinity. Its
// value names an endpoint opaquely; a value that names no ready endpoint is
// replaced.
type AffinityCookie struct {
	// Name is the cookie's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Name string `json:"name"`

	// TTL is the cookie's Max-Age; left out, it is a session cookie.
	// +optional
	TTL *Duration `json:"ttl,omitempty"`
}

// BackendProtocol is the protocol spoken to backends.
//
// +kubebuilder:validation:Enum=HTTP1;H2C
type BackendProtocol string

// The backend protocols.
const (
	// BackendHTTP1 is HTTP/1.1 with keep-alive.
	BackendHTTP1 BackendProtocol = "HTTP1"
	// BackendH2C is HTTP/2 over cleartext TCP with prior knowledge.
	BackendH2C BackendProtocol = "H2C"
)

// RoutePolicyStatus is what the controller observed of a RoutePolicy.
type RoutePolicyStatus struct {
	// ObservedGeneration is the metadata.generation the conditions were
	// computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Accepted and ResolvedRefs, each carrying the
	// generation it was computed from.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// The condition types of RoutePolicyStatus.
const (
	// ConditionAccepted is True when the policy applies to every target it
	// resolved; False with ReasonConflicted when an older policy already
	// targets one of them, or ReasonInvalid when a value cannot be used.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every target exists and belongs to
	// this controller's IngressClass; False with ReasonTargetNotFound or
	// ReasonTargetNotOurs otherwise.
	ConditionResolvedRefs = "ResolvedRefs"
)

// The condition reasons of RoutePolicyStatus.
const (
	ReasonAccepted       = "Accepted"
	ReasonConflicted     = "Conflicted"
	ReasonInvalid        = "Invalid"
	ReasonResolvedRefs   = "ResolvedRefs"
	ReasonTargetNotFound = "TargetNotFound"
	ReasonTargetNotOurs  = "TargetNotOurs"
)

// RoutePolicyList is a list of RoutePolicies.
//
// +kubebuilder:object:root=true
type RoutePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoutePolicy `json:"items"`
}
